"""What Slack sends, as the product's inbound values: Events API envelopes (over HTTP or Socket Mode)
and interactions (button taps, the Edit modal's submission). Pure functions, no I/O."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.errors import MalformedPayload
from channels.payloads import parse_json
from channels.types import Inbound, InboundAction, InboundMessage, ProviderEvent

log = logging.getLogger("channels.slack")

# Message subtypes a person writes; every other subtype (bot_message, message_changed, channel_join...) is
# an echo or a notice, and answering it could loop.
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
EDIT_CALLBACK = "ic_edit"  # the correction modal's callback id
EDIT_INPUT = "correction"


@dataclass(frozen=True, slots=True)
class Installation:
    """One workspace's credentials for this app (stored encrypted per installation)."""

    team_id: str
    bot_token: str
    bot_user_id: str = ""
    user_token: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_scopes: frozenset[str] = field(default_factory=frozenset)
    installer: str | None = None  # the installer's user id: the owner of what they install (ID-3)


def address_of(team_id: str, conversation_id: str) -> str:
    return f"{team_id}:{conversation_id}"


def split_address(address: str) -> tuple[str, str]:
    """(installation key, conversation): ``"T…:C…"`` for the shared app, ``"A…:T…:C…"`` for a dedicated one."""
    key, _, conversation = address.rpartition(":")
    return key, conversation


def installation_key(team: str, app_id: str | None) -> str:
    """Which installation a workspace's event belongs to: the shared app's (the team) or a dedicated app's."""
    return f"{app_id}:{team}" if app_id else team


def parse_envelope(data: dict[str, Any], installations: Mapping[str, Installation],
                   app_id: str | None = None) -> list[Inbound]:
    """An Events API envelope (webhook body or a Socket Mode ``events_api`` payload), sent to the shared
    app or (``app_id``) to a dedicated app."""
    if data.get("type") != "event_callback":
        return []
    event, team, event_id = data.get("event"), data.get("team_id"), data.get("event_id")
    if not isinstance(event, dict) or not isinstance(team, str) or not isinstance(event_id, str):
        raise MalformedPayload("event_callback without event, team_id or event_id")
    key, kind = installation_key(team, app_id), event.get("type")
    if kind == "app_uninstalled":
        return [ProviderEvent(dedupe_key=f"event:{event_id}", type="uninstalled", installation=key)]
    if kind == "tokens_revoked":
        tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
        what = "uninstalled" if tokens.get("bot") else "user_tokens_revoked"
        return [ProviderEvent(dedupe_key=f"event:{event_id}", type=what, installation=key,
                              data={"users": list(tokens.get("oauth") or [])})]
    if kind == "assistant_thread_started" and app_id:  # SL-6: a dedicated app's assistant pane opened a thread
        thread = _object(event, "assistant_thread")
        return [ProviderEvent(dedupe_key=f"event:{event_id}", type=kind, installation=key,
                              data={"channel_id": thread.get("channel_id"), "thread_ts": thread.get("thread_ts"),
                                    "user_id": thread.get("user_id")})]
    if kind not in ("message", "app_mention"):
        return []
    installation = installations.get(key)
    if installation is None:
        log.warning("slack: event for workspace %s, which has not installed this app; ignored", key)
        return []
    message = _message(event, key, team, installation.bot_user_id)
    return [message] if message else []


def _message(event: dict[str, Any], key: str, team: str, bot_user_id: str) -> InboundMessage | None:
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not isinstance(user, str) or not isinstance(channel, str) or not isinstance(ts, str):
        return None
    if event.get("bot_id") or event.get("subtype") not in PERSON_SUBTYPES or user == bot_user_id:
        return None  # our own posts and other bots: answering them would loop
    text = str(event.get("text") or "")
    is_direct = event.get("channel_type") == "im" or channel.startswith("D")
    mention = f"<@{bot_user_id}>" if bot_user_id else None
    addressed = is_direct or event.get("type") == "app_mention" or bool(mention and mention in text)
    if mention:
        text = text.replace(mention, "").strip()
    thread = event.get("thread_ts") or (None if is_direct else ts)  # SL-5: a channel reply goes in a thread
    profile = event.get("user_profile") if isinstance(event.get("user_profile"), dict) else {}
    # One key per Slack message and app: a mention also subscribed as message.channels arrives twice, and
    # a channel message reaches every app in the channel (each answers for its own smith).
    scope = "" if key == team else f"{key.partition(':')[0]}:"
    return InboundMessage(
        dedupe_key=f"msg:{scope}{channel}:{ts}", address=address_of(key, channel), thread=thread,
        sender_id=f"slack:{team}:{user}",
        sender_display=str(profile.get("display_name") or profile.get("real_name") or user),
        text=text, start_payload=None, is_direct=is_direct, provider_message_id=ts, addressed=addressed)

def parse_interaction(payload: dict[str, Any], app_id: str | None = None) -> list[Inbound]:
    kind = payload.get("type")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    team_field = payload.get("team")
    team = (team_field.get("id") if isinstance(team_field, dict) else None) or user.get("team_id")
    if not isinstance(team, str) or not isinstance(user.get("id"), str):
        raise MalformedPayload("interaction without team or user")
    sender = f"slack:{team}:{user['id']}"
    display = str(user.get("name") or user.get("username") or user["id"])
    if kind == "block_actions":
        actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
        container = _object(payload, "container")
        channel = _object(payload, "channel").get("id") or container.get("channel_id")
        if not actions or not isinstance(actions[0], dict) or not isinstance(channel, str):
            raise MalformedPayload("block_actions without an action or a channel")
        action = actions[0]
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        ts = container.get("message_ts") or message.get("ts")
        return [InboundAction(
            dedupe_key=f"act:{channel}:{ts}:{action.get('action_ts')}",
            address=address_of(installation_key(team, app_id), channel),
            thread=message.get("thread_ts"), sender_id=sender, sender_display=display,
            token=str(action.get("value") or ""), provider_message_id=ts, action_id=payload.get("trigger_id"))]
    if kind == "view_submission":
        view = _object(payload, "view")
        if view.get("callback_id") != EDIT_CALLBACK:
            return []
        meta = parse_json(str(view.get("private_metadata") or "{}"))
        if not isinstance(meta, dict):
            raise MalformedPayload("edit modal without its metadata")
        correction = _modal_text(view)
        return [InboundAction(
            dedupe_key=f"view:{view.get('id')}:{view.get('hash')}", address=str(meta.get("address", "")),
            thread=None, sender_id=sender, sender_display=display, token=str(meta.get("token", "")),
            provider_message_id=meta.get("ts"), action_id=None, text=correction)]
    return []


def form_payload(body: bytes) -> dict[str, Any]:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = parse_json(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise MalformedPayload(f"interaction is not a form with a JSON payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("interaction payload is not an object")
    return payload


def _object(container: dict[str, Any], key: str) -> dict[str, Any]:
    """``container[key]`` as an object: {} when absent; a value of another type is not Slack's shape."""
    found = container.get(key)
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise MalformedPayload(f"{key} is not an object")
    return found


def _modal_text(view: dict[str, Any]) -> str:
    values = _object(_object(view, "state"), "values")
    for block in values.values():
        if isinstance(block, dict) and isinstance(block.get(EDIT_INPUT), dict):
            return str(block[EDIT_INPUT].get("value") or "").strip()
    return ""


def edit_modal(action: InboundAction) -> dict[str, Any]:
    meta = json.dumps({"token": action.token, "address": action.address, "ts": action.provider_message_id})
    return {
        "type": "modal", "callback_id": EDIT_CALLBACK, "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Edit the request"},
        "submit": {"type": "plain_text", "text": "Send correction"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "input", "block_id": "edit", "label": {"type": "plain_text", "text": "What should change?"},
                    "element": {"type": "plain_text_input", "action_id": EDIT_INPUT, "multiline": True}}],
    }
