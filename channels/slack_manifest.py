"""Slack app manifests: the shared app's (what a person pastes into "Create New App → From a manifest")
and each dedicated app's (minted by the server through the Manifest API).

Its URLs always point at this server; its scopes and events are exactly what the product uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template
from typing import Any

BOT_SCOPES = ("app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history",
              "channels:read", "groups:history", "groups:read", "users:read")
USER_SCOPES = ("search:read",)  # slack_search runs as the installer: search.messages takes user tokens only
BOT_EVENTS = ("app_mention", "message.im", "message.channels", "message.groups", "app_uninstalled",
              "tokens_revoked")


def manifest(urls: Mapping[str, str], *, name: str = "Ingram") -> dict[str, Any]:
    return {
        "display_information": {"name": name[:35], "description": "Your agents, in Slack."},
        "features": {
            "bot_user": {"display_name": name[:80], "always_online": True},
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
        },
        "oauth_config": {"redirect_urls": [urls["oauth_redirect_url"]],
                         "scopes": {"bot": list(BOT_SCOPES), "user": list(USER_SCOPES)}},
        "settings": {
            "event_subscriptions": {"request_url": urls["events_url"], "bot_events": list(BOT_EVENTS)},
            "interactivity": {"is_enabled": True, "request_url": urls["interactivity_url"]},
            "org_deploy_enabled": False, "socket_mode_enabled": False, "token_rotation_enabled": False,
        },
    }


# A dedicated app's manifest (SL-1, SL-3): a fixed template in which only ${display_name} and ${owner_name}
# are substituted (into the parsed strings, so a name cannot add keys), then the URLs are forced to this
# server and the assistant view added when asked for.
DEDICATED_TEMPLATE: dict[str, Any] = {
    "display_information": {"name": "${display_name}",
                            "description": "${display_name}: ${owner_name}'s agent, served by Ingram."},
    "features": {
        "bot_user": {"display_name": "${display_name}", "always_online": True},
        "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True, "messages_tab_read_only_enabled": False},
    },
    "oauth_config": {"scopes": {"bot": list(BOT_SCOPES), "user": list(USER_SCOPES)}},
    "settings": {"event_subscriptions": {"bot_events": list(BOT_EVENTS)},
                 "interactivity": {"is_enabled": True},
                 "org_deploy_enabled": False, "socket_mode_enabled": False, "token_rotation_enabled": False},
}
ASSISTANT_SCOPES = ("assistant:write",)
ASSISTANT_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")


def dedicated_manifest(urls: Mapping[str, str], *, display_name: str, owner_name: str,
                       assistant: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of one smith's app; ``assistant`` ({greeting, suggested_prompts}) enables the pane."""
    names = {"display_name": display_name, "owner_name": owner_name}
    made: dict[str, Any] = _substitute(DEDICATED_TEMPLATE, names)
    made["oauth_config"]["redirect_urls"] = [urls["oauth_redirect_url"]]
    made["settings"]["event_subscriptions"]["request_url"] = urls["events_url"]
    made["settings"]["interactivity"]["request_url"] = urls["interactivity_url"]
    if assistant is not None:
        made["oauth_config"]["scopes"]["bot"] += list(ASSISTANT_SCOPES)
        made["settings"]["event_subscriptions"]["bot_events"] += list(ASSISTANT_EVENTS)
        view: dict[str, Any] = {"assistant_description": str(assistant.get("greeting") or
                                                             f"{display_name}, {owner_name}'s agent.")[:250]}
        prompts = list(assistant.get("suggested_prompts") or [])
        if prompts:
            view["suggested_prompts"] = prompts
        made["features"]["assistant_view"] = view
    return made


def _substitute(tree: Any, names: Mapping[str, str]) -> Any:
    if isinstance(tree, dict):
        return {key: _substitute(value, names) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_substitute(value, names) for value in tree]
    if isinstance(tree, str):
        return Template(tree).safe_substitute(names)
    return tree
