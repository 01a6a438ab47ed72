"""The Web API half of FakeSlack (tests/fakes/slack.py, which re-exports the public names here).

- the workspace model the fake serves: ``SlackApp``, ``SlackUser``, ``SlackChannel``, ``Workspace``,
  ``SlackToken``, and ``ApiError`` (an ``ok: false`` answer);
- ``SlackWebApi``, a mixin with one ``_m_<method>`` handler per Web API method (``chat.postMessage`` ->
  ``_m_chat_postMessage``) and their helpers: scope checks, message storage, DMs, cursor pagination;
- ``_params``, a call's parameters as slack_sdk sends them. FakeSlack's ``_api`` reads them, authenticates
  the call, then hands ``(token, params)`` to the handler.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.fakes.slack_socket import APP_ID, APP_NAME, TEAM_ID, new_ts

TokenKind = Literal["bot", "user", "app"]
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


class ApiError(Exception):
    """An ``ok: false`` answer (HTTP 200, as Slack does), with any extra fields (``needed``, ``provided``)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra

    def response(self) -> JSONResponse:
        return JSONResponse({"ok": False, "error": self.error, **self.extra})


@dataclass
class SlackApp:
    app_id: str
    client_id: str
    client_secret: str
    signing_secret: str
    name: str = APP_NAME
    redirect_urls: list[str] = field(default_factory=list)  # from a manifest; empty: any redirect_uri goes


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str
    team_id: str
    is_bot: bool = False
    bot_id: str | None = None
    display_name: str = ""

    def as_api(self) -> dict[str, Any]:
        profile: dict[str, Any] = {"real_name": self.real_name, "display_name": self.display_name,
                                   "real_name_normalized": self.real_name,
                                   "display_name_normalized": self.display_name, "team": self.team_id}
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {"id": self.id, "team_id": self.team_id, "name": self.name, "deleted": False,
                "real_name": self.real_name, "tz": "Europe/London", "is_admin": False, "is_owner": False,
                "is_bot": self.is_bot, "is_app_user": False, "updated": 1767225600, "profile": profile}


@dataclass
class SlackChannel:
    id: str
    name: str
    members: list[str]
    is_im: bool = False
    is_private: bool = False
    im_user: str | None = None  # for a DM: the person the app talks to
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_api(self, viewer: str | None) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "created": 1767225600, "is_im": True, "is_org_shared": False,
                    "user": self.im_user, "is_user_deleted": False, "priority": 0}
        return {"id": self.id, "name": self.name, "name_normalized": self.name, "is_channel": not self.is_private,
                "is_group": self.is_private, "is_im": False, "is_mpim": False, "is_private": self.is_private,
                "created": 1767225600, "is_archived": False, "is_general": self.name == "general",
                "is_member": viewer in self.members, "num_members": len(self.members),
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0}}


@dataclass
class Workspace:
    id: str
    name: str
    domain: str
    installer_id: str  # who clicks "Allow" on the consent page
    users: dict[str, SlackUser] = field(default_factory=dict)
    channels: dict[str, SlackChannel] = field(default_factory=dict)
    bots: dict[str, str] = field(default_factory=dict)  # app id -> that app's bot user id here


@dataclass
class SlackToken:
    token: str
    team_id: str
    kind: TokenKind
    scopes: list[str]
    user_id: str | None  # the bot user for a bot token
    bot_id: str | None = None
    app_id: str = APP_ID


@dataclass
class _Grant:
    """One authorize request, then the code it produced (single use)."""
    client_id: str
    redirect_uri: str
    state: str
    scopes: list[str]
    user_scopes: list[str]
    team_id: str
    installer_id: str = ""


class SlackWebApi:
    """The Web API methods of FakeSlack (a mixin). They read and change the state FakeSlack keeps."""

    url: str
    apps: dict[str, SlackApp]
    workspaces: dict[str, Workspace]
    posted: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    ephemerals: list[dict[str, Any]]
    views_opened: list[dict[str, Any]]
    _codes: dict[str, _Grant]
    _serial: itertools.count[int]

    if TYPE_CHECKING:  # defined by FakeSlack and SocketModeServer
        def add_token(self, token: str, *, kind: TokenKind, scopes: list[str], user_id: str | None,
                      team_id: str = TEAM_ID, bot_id: str | None = None, app_id: str = APP_ID) -> SlackToken: ...

        def _add_bot_user(self, workspace: Workspace, app_id: str, user_id: str, bot_id: str) -> None: ...

        def issue_socket_ticket(self, app_id: str) -> str: ...

    # -- Web API methods: (token, params) -> the answer's fields beside "ok" ----------------------

    async def _m_auth_test(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        workspace = self.workspaces[tok.team_id]
        user = workspace.users.get(tok.user_id or "")
        answer = {"url": f"https://{workspace.domain}.slack.com/", "team": workspace.name,
                  "user": user.name if user else "", "team_id": workspace.id, "user_id": tok.user_id,
                  "is_enterprise_install": False}
        return {**answer, "bot_id": tok.bot_id} if tok.bot_id else answer

    async def _m_oauth_v2_access(self, _: None, params: dict[str, Any]) -> dict[str, Any]:
        app = self.apps.get(str(params.get("client_id") or ""))
        if app is None:
            raise ApiError("invalid_client_id")
        if params.get("client_secret") != app.client_secret:
            raise ApiError("bad_client_secret")
        grant = self._codes.pop(str(params.get("code") or ""), None)  # single use, even when the rest is wrong
        if grant is None or grant.client_id != app.client_id:
            raise ApiError("invalid_code")
        if params.get("redirect_uri") != grant.redirect_uri:
            raise ApiError("bad_redirect_uri")
        workspace = self.workspaces[grant.team_id]
        answer: dict[str, Any] = {"app_id": app.app_id, "authed_user": {"id": grant.installer_id}}
        if grant.scopes:
            if app.app_id not in workspace.bots:
                self._add_bot_user(workspace, app.app_id, f"U{secrets.token_hex(4).upper()}",
                                   f"B{secrets.token_hex(4).upper()}")
            bot = workspace.users[workspace.bots[app.app_id]]
            token = self.add_token(f"xoxb-{next(self._serial)}-{next(self._serial)}-{secrets.token_hex(12)}",
                                   kind="bot", scopes=grant.scopes, user_id=bot.id, team_id=workspace.id,
                                   bot_id=bot.bot_id, app_id=app.app_id)
            answer.update(scope=",".join(grant.scopes), token_type="bot", access_token=token.token,
                          bot_user_id=bot.id)
        if grant.user_scopes:
            token = self.add_token(f"xoxp-{next(self._serial)}-{next(self._serial)}-{secrets.token_hex(16)}",
                                   kind="user", scopes=grant.user_scopes, user_id=grant.installer_id,
                                   team_id=workspace.id, app_id=app.app_id)
            answer["authed_user"].update(scope=",".join(grant.user_scopes), access_token=token.token,
                                         token_type="user")
        return {**answer, "team": {"id": workspace.id, "name": workspace.name}, "enterprise": None,
                "is_enterprise_install": False}

    async def _m_conversations_open(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "im:write")
        users = _split(params.get("users"))
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 1:
            raise ApiError("not_supported")  # group DMs are not modelled here
        channel, existed = self._open_dm(self.workspaces[tok.team_id], users[0], tok.user_id or "")
        return {"no_op": existed, "already_open": existed, "channel": {"id": channel.id}}

    async def _m_chat_postMessage(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "chat:write")
        channel = self._conversation(tok, params.get("channel"))
        text, blocks = str(params.get("text") or ""), params.get("blocks")
        _check_content(text, blocks, params.get("attachments"))
        if not channel.is_im and tok.user_id not in channel.members and "chat:write.public" not in tok.scopes:
            raise ApiError("not_in_channel")
        message = self._authored(tok, text, blocks)
        thread_ts = params.get("thread_ts") or None
        self._store(channel, message, thread_ts)
        self.posted.append({"channel": channel.id, "ts": message["ts"], "text": text, "blocks": blocks,
                            "thread_ts": thread_ts, "team_id": tok.team_id, "received_at": time.monotonic()})
        return {"channel": channel.id, "ts": message["ts"], "message": message}

    async def _m_chat_update(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "chat:write")
        channel = self._conversation(tok, params.get("channel"))
        message = _find(channel, str(params.get("ts") or ""))
        if message is None:
            raise ApiError("message_not_found")
        if message.get("user") != tok.user_id:
            raise ApiError("cant_update_message")
        text, blocks = str(params.get("text") or message.get("text") or ""), params.get("blocks")
        _check_content(text, blocks, None)
        message["text"] = text
        if blocks is not None:  # no blocks keeps the old ones; [] removes them
            message["blocks"] = blocks
        message["edited"] = {"user": tok.user_id, "ts": new_ts()}
        self.updates.append({"channel": channel.id, "ts": message["ts"], "text": text, "blocks": blocks,
                             "received_at": time.monotonic()})
        return {"channel": channel.id, "ts": message["ts"], "text": text, "message": message}

    async def _m_chat_postEphemeral(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "chat:write")
        channel = self._conversation(tok, params.get("channel"))
        text, blocks = str(params.get("text") or ""), params.get("blocks")
        _check_content(text, blocks, params.get("attachments"))
        if params.get("user") not in channel.members:
            raise ApiError("user_not_in_channel")
        ts = new_ts()
        self.ephemerals.append({"channel": channel.id, "user": params["user"], "text": text, "blocks": blocks,
                                "thread_ts": params.get("thread_ts"), "message_ts": ts,
                                "received_at": time.monotonic()})
        return {"message_ts": ts}

    async def _m_views_open(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if not params.get("trigger_id") or not isinstance(view, dict) or view.get("type") != "modal":
            raise ApiError("invalid_arguments")
        view_id = f"V{next(self._serial):09d}"
        opened = {"id": view_id, "team_id": tok.team_id, "private_metadata": "", "callback_id": "",
                  "state": {"values": {}}, "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                  "clear_on_close": False, "notify_on_close": False, "external_id": "", "previous_view_id": None,
                  "root_view_id": view_id, "app_id": tok.app_id, "app_installed_team_id": tok.team_id,
                  "bot_id": tok.bot_id, **view}
        self.views_opened.append({"trigger_id": params["trigger_id"], "view": view, "view_id": view_id,
                                  "received_at": time.monotonic()})
        return {"view": opened}

    async def _m_users_info(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "users:read")
        user = self.workspaces[tok.team_id].users.get(str(params.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.as_api()}

    async def _m_conversations_history(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(tok, params)
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")
        top = [m for m in channel.messages if m.get("thread_ts") in (None, m["ts"])  # replies stay in threads
               and oldest < float(m["ts"]) < latest]
        page, cursor = _paginate(sorted(top, key=lambda m: float(m["ts"]), reverse=True), params)
        return {"messages": page, "has_more": bool(cursor), "pin_count": 0,
                "response_metadata": {"next_cursor": cursor}}

    async def _m_conversations_replies(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(tok, params)
        message = _find(channel, str(params.get("ts") or ""))
        if message is None:
            raise ApiError("thread_not_found")
        root = message.get("thread_ts") or message["ts"]
        thread = [m for m in channel.messages if root in (m["ts"], m.get("thread_ts"))]
        page, cursor = _paginate(sorted(thread, key=lambda m: float(m["ts"])), params)
        return {"messages": page, "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}

    async def _m_conversations_list(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "channels:read")
        types = set(_split(params.get("types")) or ["public_channel"])
        visible = [c for c in self.workspaces[tok.team_id].channels.values()
                   if _kind(c) in types and (_kind(c) == "public_channel" or tok.user_id in c.members)]
        page, cursor = _paginate(visible, params)
        return {"channels": [c.as_api(tok.user_id) for c in page], "response_metadata": {"next_cursor": cursor}}

    async def _m_search_messages(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        if tok.kind != "user":
            raise ApiError("not_allowed_token_type")
        _need(tok, "search:read")
        query = str(params.get("query") or "")
        if not query.strip():
            raise ApiError("no_query")
        workspace, words = self.workspaces[tok.team_id], query.lower().split()
        found = sorted(((c, m) for c in workspace.channels.values()
                        if _kind(c) == "public_channel" or tok.user_id in c.members
                        for m in c.messages if all(w in str(m.get("text", "")).lower() for w in words)),
                       key=lambda pair: float(pair[1]["ts"]), reverse=True)
        count, page = _int(params, "count", 20), _int(params, "page", 1)
        chunk, pages = found[(page - 1) * count:page * count], max(1, -(-len(found) // count))
        matches = [{"iid": secrets.token_hex(8), "team": workspace.id, "type": "message", "user": m.get("user"),
                    "username": getattr(workspace.users.get(m.get("user") or ""), "name", ""), "ts": m["ts"],
                    "text": m.get("text", ""), "permalink": _permalink(workspace, c, m),
                    "channel": {"id": c.id, "name": c.im_user if c.is_im else c.name, "is_im": c.is_im,
                                "is_private": c.is_private or c.is_im, "is_mpim": False,
                                "is_channel": _kind(c) == "public_channel"}} for c, m in chunk]
        paging = {"count": count, "total": len(found), "page": page, "pages": pages}
        return {"query": query, "messages": {"total": len(found), "matches": matches, "paging": paging,
                                             "pagination": {"total_count": len(found), "page": page,
                                                            "per_page": count, "page_count": pages,
                                                            "first": (page - 1) * count + 1,
                                                            "last": (page - 1) * count + len(chunk)}}}

    async def _m_apps_connections_open(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "connections:write")
        ticket = self.issue_socket_ticket(tok.app_id)
        return {"url": f"{self.url.replace('http://', 'ws://', 1)}/socket?ticket={ticket}&app_id={tok.app_id}"}

    # -- method helpers --------------------------------------------------------------------------

    def _conversation(self, tok: SlackToken, channel_id: Any) -> SlackChannel:
        """A channel of the token's workspace; a user id means the app's DM with that person."""
        workspace, channel_id = self.workspaces[tok.team_id], str(channel_id or "")
        if channel_id[:1] in ("U", "W") and channel_id in workspace.users:
            return self._open_dm(workspace, channel_id, tok.user_id or "")[0]
        channel = workspace.channels.get(channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _readable(self, tok: SlackToken, params: dict[str, Any]) -> SlackChannel:
        channel = self._conversation(tok, params.get("channel"))
        _need(tok, {"im": "im:history", "private_channel": "groups:history"}.get(_kind(channel), "channels:history"))
        if tok.kind == "bot" and tok.user_id not in channel.members:
            raise ApiError("not_in_channel")
        return channel

    def _open_dm(self, workspace: Workspace, user_id: str, bot_user_id: str) -> tuple[SlackChannel, bool]:
        user = workspace.users.get(user_id)
        if user is None:
            raise ApiError("user_not_found")
        if user.is_bot:
            raise ApiError("cannot_dm_bot")
        for channel in workspace.channels.values():  # each app has its own DM with a person
            if channel.is_im and channel.im_user == user_id and (not bot_user_id or bot_user_id in channel.members):
                return channel, True
        channel_id = f"D{user_id[1:]}" if f"D{user_id[1:]}" not in workspace.channels else f"D{next(self._serial)}"
        channel = SlackChannel(channel_id, user_id, [user_id, bot_user_id], is_im=True, im_user=user_id)
        workspace.channels[channel_id] = channel
        return channel, False

    def _authored(self, tok: SlackToken, text: str, blocks: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "text": text, "user": tok.user_id, "ts": new_ts(),
                                   "team": tok.team_id}
        if blocks:
            message["blocks"] = blocks
        if tok.kind == "bot":
            bot = self.workspaces[tok.team_id].users.get(tok.user_id or "")
            message.update(bot_id=tok.bot_id, app_id=tok.app_id, bot_profile={
                "id": tok.bot_id, "app_id": tok.app_id, "name": bot.real_name if bot else APP_NAME,
                "deleted": False, "team_id": tok.team_id})
        return message

    @staticmethod
    def _store(channel: SlackChannel, message: dict[str, Any], thread_ts: str | None) -> None:
        if thread_ts and thread_ts != message["ts"]:
            message["thread_ts"] = thread_ts
            parent = _find(channel, thread_ts)
            if parent is not None:  # what Slack shows on a thread's parent
                message["parent_user_id"] = parent.get("user")
                parent.update(thread_ts=thread_ts, reply_count=parent.get("reply_count", 0) + 1,
                              latest_reply=message["ts"],
                              reply_users=sorted({*parent.get("reply_users", []), message.get("user") or ""}))
        channel.messages.append(message)


# -- helpers ---------------------------------------------------------------------------------------

async def _params(request: Request) -> dict[str, Any]:
    """Query string plus a JSON or form body (slack_sdk's async client puts form params in the query)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body and request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body is not an object")
        params.update(data)
    elif body:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    for name in _JSON_FIELDS:  # form bodies carry objects as JSON strings
        if isinstance(params.get(name), str) and params[name]:
            params[name] = json.loads(params[name])
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential:
        params["token"] = credential
    elif scheme.lower() == "basic":
        client_id, _, client_secret = base64.b64decode(credential).decode().partition(":")
        params.setdefault("client_id", client_id)
        params.setdefault("client_secret", client_secret)
    return params


def _need(tok: SlackToken, scope: str) -> None:
    if scope not in tok.scopes:
        raise ApiError("missing_scope", needed=scope, provided=",".join(tok.scopes))


def _check_content(text: str, blocks: Any, attachments: Any) -> None:
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    if len(text) > 40_000:
        raise ApiError("msg_too_long")
    if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50
                               or not all(isinstance(b, dict) and b.get("type") for b in blocks)):
        raise ApiError("invalid_blocks")


def _find(channel: SlackChannel, ts: str) -> dict[str, Any] | None:
    return next((m for m in channel.messages if m["ts"] == ts), None)


def _kind(channel: SlackChannel) -> str:
    return "im" if channel.is_im else "private_channel" if channel.is_private else "public_channel"


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _int(params: dict[str, Any], name: str, default: int) -> int:
    try:
        return max(1, int(params.get(name) or default))
    except ValueError:
        raise ApiError("invalid_arguments") from None


def _paginate(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str]:
    """One page and the next cursor ("" when done), as ``response_metadata.next_cursor``."""
    limit, start = min(_int(params, "limit", 100), 1000), 0
    if params.get("cursor"):
        try:
            start = int(base64.b64decode(str(params["cursor"])).decode().removeprefix("next:"))
        except (ValueError, binascii.Error):
            raise ApiError("invalid_cursor") from None
    end = start + limit
    return items[start:end], base64.b64encode(f"next:{end}".encode()).decode() if end < len(items) else ""


def _permalink(workspace: Workspace, channel: SlackChannel, message: dict[str, Any]) -> str:
    link = f"https://{workspace.domain}.slack.com/archives/{channel.id}/p{message['ts'].replace('.', '')}"
    thread_ts = message.get("thread_ts")
    return f"{link}?thread_ts={thread_ts}&cid={channel.id}" if thread_ts and thread_ts != message["ts"] else link
