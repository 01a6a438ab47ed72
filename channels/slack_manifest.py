"""The shared Slack app's manifest: what a person pastes into "Create New App → From a manifest".

Its URLs always point at this server; its scopes and events are exactly what the product uses.
"""

from __future__ import annotations

from collections.abc import Mapping
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
