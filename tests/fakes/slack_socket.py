"""What Slack sends to an app, for the fake Slack (tests/fakes/slack.py, which re-exports all of it).

- the default app's and workspace's identifiers (``TEAM_ID``, ``BOT_USER_ID``, ``SIGNING_SECRET``...);
- request signing (``sign``) and the interactivity form body (``interaction_body``);
- builders of Events API envelopes and interactivity payloads in Slack's documented shapes
  (reference/slack.md): ``event_envelope``, ``message_event``, ``mention_event``,
  ``assistant_thread_started_event``, ``assistant_thread_context_changed_event``,
  ``block_actions_payload``, ``view_submission_payload``;
- ``SocketModeServer``, the Socket Mode websocket that ``apps.connections.open`` points at, as
  slack_sdk's SocketModeClient expects it: ``hello`` on connect, envelopes pushed by the test, acks.

Everything but ``SocketModeServer`` is pure: importable and usable without a server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier
from starlette.websockets import WebSocket, WebSocketDisconnect

# The default app (the product's Slack app) and the workspace it is installed in.
CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "c0ffee00c0ffee00c0ffee00c0ffee00"
SIGNING_SECRET = "8f742231b10e8888abcd99edabcd85a5"
VERIFICATION_TOKEN = "Bq5xN7fake0verificat1on"  # deprecated by Slack, still sent in payloads
APP_ID = "A0APP00001"
APP_NAME = "Ingram"
TEAM_ID = "T0TEAM"
TEAM_NAME = "Ingram Test"
TEAM_DOMAIN = "ingram-test"
BOT_USER_ID = "U0BOTUSER"
BOT_ID = "B0BOT00001"
INSTALLER_ID = "U0123ABC"  # the person who installs the app (owner identity)
INSTALLER_NAME = "dana"
OTHER_USER_ID = "U0OTHER"
OTHER_USER_NAME = "sam"
GENERAL_CHANNEL_ID = "C0GENERAL"
DM_CHANNEL_ID = "D0PERSONAL"  # the app's DM with the installer
BOT_TOKEN = "xoxb-1111111111-2222222222-fakeBotToken0001"
USER_TOKEN = "xoxp-1111111111-3333333333-4444444444-fakeUserToken01"  # the installer's, search:read
APP_TOKEN = "xapp-1-A0APP00001-5555555555-fakeAppLevelToken01"  # connections:write (Socket Mode)
BOT_SCOPES = ["app_mentions:read", "assistant:write", "channels:history", "channels:read", "chat:write",
              "im:history", "im:read", "im:write", "users:read"]
USER_SCOPES = ["search:read"]

_MENTION = re.compile(r"(<@[UW][A-Z0-9]+>)")
_BUTTON_LABELS = {"a": "Approve", "r": "Reject", "e": "Edit"}
_ts_lock = threading.Lock()
_last_ts_us = 0


def new_ts() -> str:
    """A Slack message timestamp, ``"<unix seconds>.<6 digits>"``, unique and increasing in this process."""
    global _last_ts_us
    with _ts_lock:
        _last_ts_us = max(time.time_ns() // 1000, _last_ts_us + 1)
        return f"{_last_ts_us // 1_000_000}.{_last_ts_us % 1_000_000:06d}"


# -- signing ---------------------------------------------------------------------------------------

def sign(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds to an Events API / interactivity request carrying ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None  # None only for a missing timestamp or body
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def interaction_body(payload: dict[str, Any]) -> bytes:
    """Interactivity as Slack posts it: form-encoded, one field ``payload`` holding the JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


# -- Events API ------------------------------------------------------------------------------------

def event_envelope(event: dict[str, Any], *, team_id: str = TEAM_ID, event_id: str | None = None,
                   api_app_id: str = APP_ID, authorized_user: str = BOT_USER_ID) -> dict[str, Any]:
    """Slack's ``event_callback`` envelope around ``event``; ``authorizations`` names the bot."""
    event_time = int(float(event.get("event_ts") or time.time()))
    context = json.dumps({"et": event.get("type"), "tid": team_id, "aid": api_app_id,
                          "cid": event.get("channel", "")}, separators=(",", ":"))
    return {
        "token": VERIFICATION_TOKEN, "team_id": team_id, "context_team_id": team_id,
        "context_enterprise_id": None, "api_app_id": api_app_id, "event": event, "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(), "event_time": event_time,
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": authorized_user,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "4-" + base64.urlsafe_b64encode(context.encode()).decode().rstrip("="),
    }


def rich_text(text: str) -> list[dict[str, Any]]:
    """The ``blocks`` Slack adds to a person's message: one rich_text section, mentions as user elements."""
    elements: list[dict[str, Any]] = []
    for part in _MENTION.split(text):
        if _MENTION.fullmatch(part):
            elements.append({"type": "user", "user_id": part[2:-1]})
        elif part:
            elements.append({"type": "text", "text": part})
    return [{"type": "rich_text", "block_id": secrets.token_hex(2),
             "elements": [{"type": "rich_text_section", "elements": elements}]}]


def message_event(text: str, *, channel: str = DM_CHANNEL_ID, user: str = INSTALLER_ID,
                  channel_type: str = "im", ts: str | None = None, thread_ts: str | None = None,
                  team: str = TEAM_ID) -> dict[str, Any]:
    """A person's ``message`` event (a DM to the app by default)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"user": user, "type": "message", "ts": ts, "client_msg_id": str(uuid.uuid4()),
                             "text": text, "team": team, "blocks": rich_text(text), "channel": channel,
                             "event_ts": ts, "channel_type": channel_type}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def mention_event(text: str, *, channel: str = GENERAL_CHANNEL_ID, user: str = INSTALLER_ID,
                  ts: str | None = None, thread_ts: str | None = None, team: str = TEAM_ID,
                  bot_user_id: str = BOT_USER_ID) -> dict[str, Any]:
    """An ``app_mention`` event; the bot's ``<@U…>`` is put in front of ``text`` when it lacks one."""
    mention = f"<@{bot_user_id}>"
    if mention not in text:
        text = f"{mention} {text}"
    ts = ts or new_ts()
    event: dict[str, Any] = {"client_msg_id": str(uuid.uuid4()), "type": "app_mention", "text": text,
                             "user": user, "ts": ts, "blocks": rich_text(text), "team": team,
                             "channel": channel, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def assistant_thread_started_event(*, user: str = INSTALLER_ID, channel: str = DM_CHANNEL_ID,
                                   thread_ts: str | None = None, context_channel: str | None = GENERAL_CHANNEL_ID,
                                   team: str = TEAM_ID, enterprise_id: str | None = None) -> dict[str, Any]:
    """``user`` opened the assistant pane: a new thread ``thread_ts`` in the app's DM ``channel``, while viewing
    ``context_channel`` (None: no channel in view, so no ``channel_id`` in the context)."""
    return _assistant_thread_event("assistant_thread_started", user, channel, thread_ts or new_ts(),
                                   context_channel, team, enterprise_id)


def assistant_thread_context_changed_event(thread_ts: str, *, context_channel: str = GENERAL_CHANNEL_ID,
                                           user: str = INSTALLER_ID, channel: str = DM_CHANNEL_ID,
                                           team: str = TEAM_ID, enterprise_id: str | None = None) -> dict[str, Any]:
    """With the pane's thread ``thread_ts`` open, ``user`` moved to ``context_channel``."""
    return _assistant_thread_event("assistant_thread_context_changed", user, channel, thread_ts, context_channel,
                                   team, enterprise_id)


def _assistant_thread_event(kind: str, user: str, channel: str, thread_ts: str, context_channel: str | None,
                            team: str, enterprise_id: str | None) -> dict[str, Any]:
    # Slack's documented example carries enterprise_id; outside Enterprise Grid we send null (unverified).
    context: dict[str, Any] = {"channel_id": context_channel} if context_channel else {}
    context.update(team_id=team, enterprise_id=enterprise_id)
    return {"type": kind, "assistant_thread": {"user_id": user, "context": context, "channel_id": channel,
                                               "thread_ts": thread_ts}, "event_ts": new_ts()}


# -- interactivity ---------------------------------------------------------------------------------

def _user(user: str, team_id: str) -> dict[str, Any]:
    name = {INSTALLER_ID: INSTALLER_NAME, OTHER_USER_ID: OTHER_USER_NAME}.get(user, user.lower())
    return {"id": user, "username": name, "name": name, "team_id": team_id}


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def block_actions_payload(action_id: str, value: str, *, user: str = INSTALLER_ID, channel: str = DM_CHANNEL_ID,
                          message_ts: str | None = None, team_id: str = TEAM_ID, block_id: str = "ic_approval",
                          label: str | None = None, response_url: str | None = None) -> dict[str, Any]:
    """A ``block_actions`` payload: ``user`` tapped a button (``action_id``, ``value``) on the bot's message."""
    message_ts = message_ts or new_ts()
    label = label or _BUTTON_LABELS.get(value[:1], "Open")
    token = value.split(":", 1)[-1]
    buttons = [{"type": "button", "action_id": f"ic_{verb.lower()}", "value": f"{prefix}:{token}",
                "text": {"type": "plain_text", "text": verb, "emoji": True}}
               for prefix, verb in _BUTTON_LABELS.items()]
    message = {"user": BOT_USER_ID, "type": "message", "ts": message_ts, "bot_id": BOT_ID, "app_id": APP_ID,
               "text": "Approval needed", "team": team_id,
               "blocks": [{"type": "section", "block_id": "req",
                           "text": {"type": "mrkdwn", "text": "Approval needed", "verbatim": False}},
                          {"type": "actions", "block_id": block_id, "elements": buttons}]}
    return {
        "type": "block_actions", "user": _user(user, team_id), "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": _trigger_id(), "team": {"id": team_id, "domain": TEAM_DOMAIN}, "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "general"},
        "message": message, "state": {"values": {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team_id}/{secrets.randbelow(10**12)}/"
                                        f"{secrets.token_hex(12)}",
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": label, "emoji": True}, "action_ts": new_ts()}],
    }


def view_submission_payload(callback_id: str, private_metadata: str, values: dict[str, dict[str, Any]],
                            user: str = INSTALLER_ID, *, team_id: str = TEAM_ID) -> dict[str, Any]:
    """A ``view_submission`` payload. ``values`` is ``state.values`` ({block_id: {action_id: ...}}); a plain
    string as the innermost value stands for a plain_text_input holding it."""
    state = {block: {action: ({"type": "plain_text_input", "value": entry} if isinstance(entry, str) else entry)
                     for action, entry in actions.items()} for block, actions in values.items()}
    blocks = [{"type": "input", "block_id": block, "label": {"type": "plain_text", "text": block},
               "element": {"type": "plain_text_input", "action_id": action}}
              for block, actions in values.items() for action in actions]
    view_id = "V" + secrets.token_hex(5).upper()
    view = {"id": view_id, "team_id": team_id, "type": "modal", "blocks": blocks,
            "private_metadata": private_metadata, "callback_id": callback_id, "state": {"values": state},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}", "title": {"type": "plain_text", "text": "Edit"},
            "clear_on_close": False, "notify_on_close": False, "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Send"}, "previous_view_id": None, "root_view_id": view_id,
            "app_id": APP_ID, "external_id": "", "app_installed_team_id": team_id, "bot_id": BOT_ID}
    return {"type": "view_submission", "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "user": _user(user, team_id), "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
            "trigger_id": _trigger_id(), "view": view, "response_urls": [], "is_enterprise_install": False,
            "enterprise": None}


# -- Socket Mode -----------------------------------------------------------------------------------

@dataclass
class _Connection:
    websocket: WebSocket
    loop: asyncio.AbstractEventLoop  # the server thread's loop: sends must run there
    app_id: str


class SocketModeServer:
    """The Socket Mode half of FakeSlack (a mixin): ``/socket?ticket=…`` as ``apps.connections.open`` hands out.

    The server runs in its own thread, so ``push_socket`` hands the send to that thread's loop; tests await
    it from theirs.
    """

    def _init_socket_mode(self) -> None:
        self.socket_acks: list[dict[str, Any]] = []  # what the client sent back, e.g. {"envelope_id": ...}
        self.socket_pushed: list[dict[str, Any]] = []  # envelopes sent to the client
        self._socket_tickets: dict[str, str] = {}  # single-use ticket -> app id
        self._socket_connections: list[_Connection] = []
        self.socket_accepted = 0  # connections accepted so far, closed ones included

    def issue_socket_ticket(self, app_id: str) -> str:
        ticket = secrets.token_hex(16)
        self._socket_tickets[ticket] = app_id
        return ticket

    @property
    def socket_connected(self) -> bool:
        return bool(self._socket_connections)

    async def wait_socket_connected(self, timeout: float = 5.0, *,  # noqa: ASYNC109 - polls another thread's state
                                    accepted: int = 1) -> None:
        """Until a client is connected and at least ``accepted`` connections were accepted in all (after a
        refresh, ``accepted=2`` waits for the new connection rather than the old one, still closing)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._socket_connections and self.socket_accepted >= accepted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode client connected")
            await asyncio.sleep(0.01)

    async def push_socket(self, payload_type: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                          retry_reason: str = "", accepts_response_payload: bool = False) -> str:
        """Send an envelope (``events_api``, ``interactive``, ``slash_commands``) to the newest connection;
        returns its ``envelope_id``."""
        if not self._socket_connections:
            raise RuntimeError("no Socket Mode client is connected")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "payload": payload, "type": payload_type,
                    "accepts_response_payload": accepts_response_payload, "retry_attempt": retry_attempt,
                    "retry_reason": retry_reason}
        self.socket_pushed.append(envelope)
        await self._socket_send(self._socket_connections[-1], envelope)
        return envelope_id

    async def deliver_socket(self, payload_type: str, payload: dict[str, Any],
                             timeout: float = 20.0,  # noqa: ASYNC109 - polls another thread's state
                             ack_within: float = 3.0) -> dict[str, Any]:
        """As Slack delivers: push the envelope to the newest connection and, when that connection goes away
        under it (a client reconnecting) or no ack comes within ``ack_within``, push it again with the next
        ``retry_attempt``, until one is acknowledged; returns that ack."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                await self.wait_socket_connected(max(0.1, deadline - time.monotonic()))
                envelope_id = await self.push_socket(payload_type, payload, retry_attempt=attempt,
                                                     retry_reason="timeout" if attempt else "")
                return await self.wait_socket_ack(envelope_id, timeout=min(ack_within,
                                                                           max(0.1, deadline - time.monotonic())))
            except (TimeoutError, RuntimeError, WebSocketDisconnect, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                attempt += 1

    async def wait_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            for ack in self.socket_acks:
                if ack.get("envelope_id") == envelope_id:
                    return ack
            if time.monotonic() > deadline:
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged")
            await asyncio.sleep(0.01)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        """Ask every client to reconnect, as Slack does before it recycles a connection."""
        for connection in list(self._socket_connections):
            await self._socket_send(connection, {"type": "disconnect", "reason": reason,
                                                 "debug_info": {"host": "applink-fake"}})

    @staticmethod
    async def _socket_send(connection: _Connection, message: dict[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(connection.websocket.send_text(json.dumps(message)),
                                                  connection.loop)
        await asyncio.wrap_future(future)

    async def socket_endpoint(self, websocket: WebSocket) -> None:
        app_id = self._socket_tickets.pop(websocket.query_params.get("ticket", ""), None)
        if app_id is None:
            await websocket.close(code=1008)  # refused before the upgrade: HTTP 403, like a stale ticket
            return
        await websocket.accept()
        connection = _Connection(websocket, asyncio.get_running_loop(), app_id)
        self._socket_connections.append(connection)
        self.socket_accepted += 1
        try:
            await websocket.send_text(json.dumps({
                "type": "hello", "num_connections": len(self._socket_connections),
                "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": app_id}}))
            while True:
                text = await websocket.receive_text()
                try:
                    message = json.loads(text)
                except ValueError:
                    continue  # Slack ignores what it cannot parse
                if isinstance(message, dict) and "envelope_id" in message:
                    self.socket_acks.append(message)
        except WebSocketDisconnect:
            pass
        finally:
            self._socket_connections.remove(connection)
