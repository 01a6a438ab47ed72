"""A fake Slack (reference/slack.md): OAuth v2 install, the Web API and Socket Mode, for slack_sdk.

    async with run_fake_slack() as slack:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        slack.rate_limit_next("chat.postMessage", retry_after=1)
        ...
        assert slack.posted[0]["channel"] == DM_CHANNEL_ID

It serves, on 127.0.0.1 (uvicorn in a background thread, like the Telegram fake):
``GET /oauth/v2/authorize`` (a consent page, or a straight redirect: see ``consent``), ``GET|POST /api/{method}``
(JSON or form bodies as slack_sdk sends them; every answer is HTTP 200 ``{"ok": ...}`` unless a test asks for a
429 or 5xx), ``POST /actions/...`` (a response_url) and the Socket Mode websocket ``/socket``; for a benchmark
that runs it in its own process, ``GET /_bench/posted?since=N`` (what chat.postMessage received, from the N-th).
Identifiers, signing and payload builders live in slack_socket.py and are re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import html
import itertools
import json
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from tests.fakes.slack_socket import (
    APP_ID,
    APP_NAME,
    APP_TOKEN,
    BOT_ID,
    BOT_SCOPES,
    BOT_TOKEN,
    BOT_USER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    DM_CHANNEL_ID,
    GENERAL_CHANNEL_ID,
    INSTALLER_ID,
    INSTALLER_NAME,
    OTHER_USER_ID,
    OTHER_USER_NAME,
    SIGNING_SECRET,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    USER_SCOPES,
    USER_TOKEN,
    VERIFICATION_TOKEN,
    SocketModeServer,
    block_actions_payload,
    event_envelope,
    interaction_body,
    mention_event,
    message_event,
    new_ts,
    rich_text,
    sign,
    view_submission_payload,
)

__all__ = [
    "APP_ID", "APP_NAME", "APP_TOKEN", "BOT_ID", "BOT_SCOPES", "BOT_TOKEN", "BOT_USER_ID", "CLIENT_ID",
    "CLIENT_SECRET", "DM_CHANNEL_ID", "GENERAL_CHANNEL_ID", "INSTALLER_ID", "INSTALLER_NAME", "OTHER_USER_ID",
    "OTHER_USER_NAME", "SIGNING_SECRET", "TEAM_DOMAIN", "TEAM_ID", "TEAM_NAME", "USER_SCOPES", "USER_TOKEN",
    "VERIFICATION_TOKEN", "ApiError", "Consent", "FakeSlack", "SlackApp", "SlackChannel", "SlackToken", "SlackUser",
    "Workspace", "block_actions_payload", "event_envelope", "interaction_body",
    "mention_event", "message_event", "new_ts", "numbered_user", "rich_text", "run_fake_slack", "serve_fake_slack",
    "serve_forever", "sign", "view_submission_payload",
]

Consent = Literal["page", "allow", "cancel"]
TokenKind = Literal["bot", "user", "app"]
_APP_TOKEN_METHODS = {"apps.connections.open"}
_NO_TOKEN_METHODS = {"oauth.v2.access"}
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


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None = None


class FakeSlack(SocketModeServer):
    def __init__(self, latency_s: float = 0.0, *, consent: Consent = "page") -> None:
        self.latency_s = latency_s
        self.consent: Consent = consent  # what the person does on the consent page (changeable at run time)
        self.url = ""  # set once serving
        self.apps: dict[str, SlackApp] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.tokens: dict[str, SlackToken] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []  # params include the token that authenticated
        self.posted: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views_opened: list[dict[str, Any]] = []
        self.responded: list[dict[str, Any]] = []  # JSON posted to response_urls
        self._codes: dict[str, _Grant] = {}
        self._consents: dict[str, _Grant] = {}  # consent pages shown, not yet answered
        self._failures: dict[str, deque[_Failure]] = {}
        self._held: set[str] = set()
        self._released = threading.Event()
        self.holding = 0  # requests waiting for release()
        self._lock = threading.Lock()
        self._serial = itertools.count(1000)
        self._init_socket_mode()
        self.add_app(APP_ID, CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET)
        self.add_workspace(TEAM_ID, TEAM_NAME, domain=TEAM_DOMAIN, installer_id=INSTALLER_ID,
                           installer_name=INSTALLER_NAME, bot_user_id=BOT_USER_ID, bot_id=BOT_ID,
                           general_id=GENERAL_CHANNEL_ID, dm_id=DM_CHANNEL_ID)
        self.add_user(INSTALLER_ID, INSTALLER_NAME, "Dana Reyes")
        self.add_user(OTHER_USER_ID, OTHER_USER_NAME, "Sam Okafor")
        self.workspaces[TEAM_ID].channels[GENERAL_CHANNEL_ID].members.append(OTHER_USER_ID)
        self.add_token(BOT_TOKEN, kind="bot", scopes=BOT_SCOPES, user_id=BOT_USER_ID, bot_id=BOT_ID)
        self.add_token(USER_TOKEN, kind="user", scopes=USER_SCOPES, user_id=INSTALLER_ID)
        self.add_token(APP_TOKEN, kind="app", scopes=["connections:write"], user_id=None)
        self.app = Starlette(routes=[
            Route("/oauth/v2/authorize", self._authorize, methods=["GET"]),
            Route("/oauth/v2/decide", self._decide, methods=["GET", "POST"]),
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/actions/{team}/{hook}/{secret}", self._response_url, methods=["POST"]),
            Route("/_bench/posted", self._bench_posted, methods=["GET"]),
            WebSocketRoute("/socket", self.socket_endpoint),
        ])

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth/v2/authorize"

    # -- state -----------------------------------------------------------------------------------

    def add_app(self, app_id: str, client_id: str, client_secret: str, signing_secret: str,
                name: str = APP_NAME) -> SlackApp:
        self.apps[client_id] = SlackApp(app_id, client_id, client_secret, signing_secret, name)
        return self.apps[client_id]

    def add_workspace(self, team_id: str, name: str, *, domain: str | None = None, installer_id: str | None = None,
                      installer_name: str = "owner", bot_user_id: str | None = None, bot_id: str | None = None,
                      general_id: str | None = None, dm_id: str | None = None) -> Workspace:
        """A workspace with its installer, the default app's bot user, #general and the bot's DM with the
        installer. Ids default to ones derived from ``team_id`` (``T0SECOND`` -> ``U0SECONDBOT``...)."""
        suffix = team_id[1:]
        workspace = Workspace(team_id, name, domain or name.lower().replace(" ", "-"),
                              installer_id or f"U{suffix}OWNER")
        self.workspaces[team_id] = workspace
        self.add_user(workspace.installer_id, installer_name, installer_name.title(), team_id=team_id)
        self._add_bot_user(workspace, APP_ID, bot_user_id or f"U{suffix}BOT", bot_id or f"B{suffix}BOT")
        bot = workspace.bots[APP_ID]
        self.add_channel(general_id or f"C{suffix}GENERAL", "general", team_id=team_id,
                         members=[workspace.installer_id, bot])
        workspace.channels[dm_id or f"D{suffix}OWNER"] = SlackChannel(
            dm_id or f"D{suffix}OWNER", workspace.installer_id, [workspace.installer_id, bot], is_im=True,
            im_user=workspace.installer_id)
        return workspace

    def add_user(self, user_id: str, name: str, real_name: str | None = None, *, team_id: str = TEAM_ID,
                 display_name: str | None = None) -> SlackUser:
        real = real_name or name
        user = SlackUser(user_id, name, real, team_id, display_name=real.split()[0] if display_name is None
                         else display_name)
        self.workspaces[team_id].users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, team_id: str = TEAM_ID, members: list[str] | None = None,
                    is_private: bool = False) -> SlackChannel:
        channel = SlackChannel(channel_id, name, list(members or []), is_private=is_private)
        self.workspaces[team_id].channels[channel_id] = channel
        return channel

    def add_message(self, channel_id: str, text: str, *, user: str = INSTALLER_ID, team_id: str = TEAM_ID,
                    ts: str | None = None, thread_ts: str | None = None) -> dict[str, Any]:
        """Put a person's message in a channel's history (for history, replies and search)."""
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts or new_ts(),
                                   "team": team_id, "blocks": rich_text(text)}
        self._store(self.workspaces[team_id].channels[channel_id], message, thread_ts)
        return message

    def add_numbered_users(self, count: int, team_id: str = TEAM_ID) -> None:
        """People 1..count (``numbered_user``), each with an open DM with the app: a benchmark's senders."""
        workspace = self.workspaces[team_id]
        for number in range(1, count + 1):
            user_id, dm_id = numbered_user(number)
            self.add_user(user_id, f"person{number}", f"Person {number}", team_id=team_id)
            workspace.channels[dm_id] = SlackChannel(dm_id, user_id, [user_id, workspace.bots[APP_ID]], is_im=True,
                                                     im_user=user_id)

    def add_token(self, token: str, *, kind: TokenKind, scopes: list[str], user_id: str | None,
                  team_id: str = TEAM_ID, bot_id: str | None = None, app_id: str = APP_ID) -> SlackToken:
        self.tokens[token] = SlackToken(token, team_id, kind, list(scopes), user_id, bot_id, app_id)
        return self.tokens[token]

    def revoke_tokens(self, team_id: str, app_id: str | None = None) -> int:
        """Make every token of the workspace (of one app, if given) invalid, as an uninstall does."""
        gone = [t for t, tok in self.tokens.items()
                if tok.team_id == team_id and app_id in (None, tok.app_id) and tok.kind != "app"]
        for token in gone:
            del self.tokens[token]
        return len(gone)

    def dm_channel(self, user_id: str, team_id: str = TEAM_ID) -> str:
        """The id of the app's DM with ``user_id`` (opened if needed), as conversations.open answers."""
        workspace = self.workspaces[team_id]
        return self._open_dm(workspace, user_id, workspace.bots[APP_ID])[0].id

    def response_url(self, team_id: str = TEAM_ID) -> str:
        """A response_url served here (POSTs to it land in ``responded``), for block_actions_payload."""
        return f"{self.url}/actions/{team_id}/{next(self._serial)}/{secrets.token_hex(12)}"

    def _add_bot_user(self, workspace: Workspace, app_id: str, user_id: str, bot_id: str) -> None:
        app_name = next((a.name for a in self.apps.values() if a.app_id == app_id), APP_NAME)
        workspace.users[user_id] = SlackUser(user_id, app_name.lower(), app_name, workspace.id, is_bot=True,
                                             bot_id=bot_id, display_name=app_name)
        workspace.bots[app_id] = user_id

    # -- test controls ---------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def fail_next(self, method: str, error: str, times: int = 1) -> None:
        """The next ``times`` calls answer ``{"ok": false, "error": error}``."""
        self._queue(method, _Failure(200, error), times)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        self._queue(method, _Failure(429, "ratelimited", retry_after), times)

    def server_error_next(self, method: str, status: int = 500, times: int = 1) -> None:
        self._queue(method, _Failure(status, "internal_error"), times)

    def hold(self, method: str) -> None:
        """Answer no call of ``method`` until ``release()``: they pile up, then all end together."""
        self._released.clear()
        self._held.add(method)

    def release(self) -> None:
        self._held.clear()
        self._released.set()

    def _queue(self, method: str, failure: _Failure, times: int) -> None:
        with self._lock:
            self._failures.setdefault(method, deque()).extend(failure for _ in range(times))

    # -- OAuth install ---------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        app = self.apps.get(query.get("client_id", ""))
        if app is None:
            return _page(400, "Slack: error", "Invalid client_id parameter")
        if not query.get("redirect_uri"):
            return _page(400, "Slack: error", "Missing redirect_uri parameter")
        scopes, user_scopes = _split(query.get("scope")), _split(query.get("user_scope"))
        if not scopes and not user_scopes:
            return _page(400, "Slack: error", "Invalid permissions requested")
        workspace = self.workspaces.get(query.get("team") or TEAM_ID)
        if workspace is None:
            return _page(400, "Slack: error", "Unknown workspace")
        grant = _Grant(app.client_id, query["redirect_uri"], query.get("state", ""), scopes, user_scopes,
                       workspace.id)
        if self.consent != "page":
            return RedirectResponse(self._answer(grant, self.consent == "allow"), status_code=302)
        request_id = secrets.token_urlsafe(12)
        self._consents[request_id] = grant
        items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
        user_items = "".join(f"<li>{html.escape(s)}</li>" for s in user_scopes)
        title = f"{app.name} wants to access {workspace.name}"
        return _page(200, title, title,
                     f"<p>{html.escape(app.name)} is requesting permission to access the {html.escape(workspace.name)}"
                     f" Slack workspace.</p><h2>What will {html.escape(app.name)} be able to do?</h2>"
                     f"<ul id='scopes'>{items}</ul><h2>On your behalf</h2><ul id='user-scopes'>{user_items}</ul>"
                     f"<p><a id='cancel' href='/oauth/v2/decide?request={request_id}&amp;choice=cancel'>Cancel</a> "
                     f"<a id='allow' href='/oauth/v2/decide?request={request_id}&amp;choice=allow'>Allow</a></p>")

    async def _decide(self, request: Request) -> Response:
        grant = self._consents.pop(request.query_params.get("request", ""), None)
        if grant is None:
            return _page(400, "Slack: error", "This page has expired. Start the installation again.")
        return RedirectResponse(self._answer(grant, request.query_params.get("choice") == "allow"), status_code=302)

    def _answer(self, grant: _Grant, allowed: bool) -> str:
        """Where the browser goes back to: a fresh single-use code, or ``error=access_denied``."""
        if allowed:
            grant.installer_id = self.workspaces[grant.team_id].installer_id
            code = f"{next(self._serial)}.{secrets.randbelow(10**12)}.{secrets.token_hex(32)}"
            self._codes[code] = grant
            query = {"code": code, "state": grant.state}
        else:
            query = {"error": "access_denied", "state": grant.state}
        return grant.redirect_uri + ("&" if "?" in grant.redirect_uri else "?") + urlencode(query)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if method in self._held:
            with self._lock:
                self.holding += 1
            await asyncio.to_thread(self._released.wait)
            with self._lock:
                self.holding -= 1
        try:
            params = await _params(request)
        except ValueError:
            return ApiError("invalid_form_data").response()
        self.calls.append((method, params))
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else None
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
            return JSONResponse({"ok": False, "error": failure.error}, status_code=failure.status, headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return ApiError("unknown_method").response()
        try:
            token = None if method in _NO_TOKEN_METHODS else self._authenticate(method, params)
            return JSONResponse({"ok": True, **await handler(token, params)})
        except ApiError as exc:
            return exc.response()

    def _authenticate(self, method: str, params: dict[str, Any]) -> SlackToken:
        if not params.get("token"):
            raise ApiError("not_authed")
        token = self.tokens.get(params["token"])
        if token is None:
            raise ApiError("invalid_auth")
        if (token.kind == "app") != (method in _APP_TOKEN_METHODS):
            raise ApiError("not_allowed_token_type")
        return token

    async def _bench_posted(self, request: Request) -> Response:
        """chat.postMessage's record from the ``since``-th on; ``received_at`` is time.monotonic(), which on Linux
        is one clock for every process, so a benchmark in another process can subtract its own readings."""
        since = max(0, int(request.query_params.get("since") or 0))
        return JSONResponse({"count": len(self.posted), "posted": self.posted[since:]})

    async def _response_url(self, request: Request) -> Response:
        self.responded.append({"url": str(request.url), "body": json.loads(await request.body() or b"{}"),
                               "received_at": time.monotonic()})
        return Response("ok", media_type="text/html")

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
        for channel in workspace.channels.values():
            if channel.is_im and channel.im_user == user_id:
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


# -- serving ---------------------------------------------------------------------------------------

def _bind(port: int = 0) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (see telegram.py).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def _server(fake: FakeSlack) -> uvicorn.Server:
    # ws="auto" takes websockets or wsproto (the latter comes with reflex): Socket Mode needs one of them.
    return uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off", access_log=False,
                                         ws="auto", timeout_graceful_shutdown=2))


@contextmanager
def serve_fake_slack(latency_s: float = 0.0, *, consent: Consent = "page") -> Iterator[FakeSlack]:
    """Serve a ``FakeSlack`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeSlack(latency_s, consent=consent)
    sock = _bind()
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _server(fake)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-slack")
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("fake Slack server did not start")
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@asynccontextmanager
async def run_fake_slack(latency_s: float = 0.0, *, consent: Consent = "page") -> AsyncIterator[FakeSlack]:
    """The same, for async tests (start and stop happen off the event loop)."""
    manager = serve_fake_slack(latency_s, consent=consent)
    fake = await asyncio.to_thread(manager.__enter__)
    try:
        yield fake
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def serve_forever(port: int, latency_s: float = 0.0, *, consent: Consent = "page", users: int = 0) -> None:
    """Serve in this process until it is stopped (for a benchmark that runs the fake on its own)."""
    fake = FakeSlack(latency_s, consent=consent)
    fake.add_numbered_users(users)
    sock = _bind(port)
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    print(f"fake Slack at {fake.url} (Web API {fake.api_url})", flush=True)
    _server(fake).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.slack", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every Web API answer")
    parser.add_argument("--consent", choices=["page", "allow", "cancel"], default="page")
    parser.add_argument("--users", type=int, default=0,
                        help="people U0BENCH0001.. with DMs D0BENCH0001.. (numbered_user) to send from")
    args = parser.parse_args(argv)
    serve_forever(args.port, args.latency_ms / 1000, consent=args.consent, users=args.users)


# -- helpers ---------------------------------------------------------------------------------------

def numbered_user(number: int) -> tuple[str, str]:
    """The ids of person ``number`` (from 1) that ``add_numbered_users`` makes, and of the app's DM with them."""
    return f"U0BENCH{number:04d}", f"D0BENCH{number:04d}"


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


def _page(status: int, title: str, heading: str, body: str = "") -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                        f"</head><body><h1>{html.escape(heading)}</h1>{body}</body></html>", status_code=status)


if __name__ == "__main__":
    main()
