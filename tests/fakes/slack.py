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
Identifiers, signing and payload builders live in slack_socket.py, the workspace model and the Web API method
handlers in slack_web.py, the App Manifest API (configuration tokens, per-smith apps) and the assistant pane's
methods in slack_apps.py; their public names are re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from tests.fakes.serve import off_loop, serve_here, serve_in_thread
from tests.fakes.slack_apps import CONFIG_TOKEN_METHODS, ConfigToken, SlackAppsApi, redirect_allowed
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
    assistant_thread_context_changed_event,
    assistant_thread_started_event,
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
from tests.fakes.slack_web import (
    ApiError,
    SlackApp,
    SlackChannel,
    SlackToken,
    SlackUser,
    SlackWebApi,
    TokenKind,
    Workspace,
    _Grant,
    _params,
    _split,
)

__all__ = [
    "APP_ID", "APP_NAME", "APP_TOKEN", "BOT_ID", "BOT_SCOPES", "BOT_TOKEN", "BOT_USER_ID", "CLIENT_ID",
    "CLIENT_SECRET", "DM_CHANNEL_ID", "GENERAL_CHANNEL_ID", "INSTALLER_ID", "INSTALLER_NAME", "OTHER_USER_ID",
    "OTHER_USER_NAME", "SIGNING_SECRET", "TEAM_DOMAIN", "TEAM_ID", "TEAM_NAME", "USER_SCOPES", "USER_TOKEN",
    "VERIFICATION_TOKEN", "ApiError", "ConfigToken", "Consent", "FakeSlack", "SlackApp", "SlackChannel", "SlackToken",
    "SlackUser", "Workspace", "assistant_thread_context_changed_event", "assistant_thread_started_event",
    "block_actions_payload", "event_envelope", "interaction_body",
    "mention_event", "message_event", "new_ts", "numbered_user", "rich_text", "run_fake_slack", "serve_fake_slack",
    "serve_forever", "sign", "view_submission_payload",
]

Consent = Literal["page", "allow", "cancel"]
_APP_TOKEN_METHODS = {"apps.connections.open"}
_NO_TOKEN_METHODS = {"oauth.v2.access", "tooling.tokens.rotate"}  # rotate's credential is its refresh_token


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None = None


class FakeSlack(SocketModeServer, SlackWebApi, SlackAppsApi):
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
        self._init_apps_api()
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
        if app.redirect_urls and not redirect_allowed(query["redirect_uri"], app.redirect_urls):
            return _page(400, "Slack: error", "OAuth Error: redirect_uri did not match any configured URIs. "
                                              f"Passed URI: {query['redirect_uri']}")
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
            scopes = ({"x-oauth-scopes": ",".join(token.scopes)}  # as Slack answers
                      if isinstance(token, SlackToken) else None)
            return JSONResponse({"ok": True, **await handler(token, params)}, headers=scopes)
        except ApiError as exc:
            return exc.response()

    def _authenticate(self, method: str, params: dict[str, Any]) -> SlackToken | ConfigToken:
        if method in CONFIG_TOKEN_METHODS:
            return self._authenticate_config(params)
        if not params.get("token"):
            raise ApiError("not_authed")
        token = self.tokens.get(params["token"])
        if token is None:
            raise ApiError("not_allowed_token_type" if params["token"] in self.config_tokens else "invalid_auth")
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


# -- serving ---------------------------------------------------------------------------------------

@contextmanager
def serve_fake_slack(latency_s: float = 0.0, *, consent: Consent = "page") -> Iterator[FakeSlack]:
    """Serve a ``FakeSlack`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeSlack(latency_s, consent=consent)
    with serve_in_thread(fake.app, "fake-slack") as url:
        fake.url = url
        yield fake


@asynccontextmanager
async def run_fake_slack(latency_s: float = 0.0, *, consent: Consent = "page") -> AsyncIterator[FakeSlack]:
    """The same, for async tests (start and stop happen off the event loop)."""
    async with off_loop(serve_fake_slack(latency_s, consent=consent)) as fake:
        yield fake


def serve_forever(port: int, latency_s: float = 0.0, *, consent: Consent = "page", users: int = 0) -> None:
    """Serve in this process until it is stopped (for a benchmark that runs the fake on its own)."""
    fake = FakeSlack(latency_s, consent=consent)
    fake.add_numbered_users(users)
    serve_here(fake.app, port, "fake Slack (Web API under /api/)", on_url=lambda url: setattr(fake, "url", url))


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


def _page(status: int, title: str, heading: str, body: str = "") -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                        f"</head><body><h1>{html.escape(heading)}</h1>{body}</body></html>", status_code=status)


if __name__ == "__main__":
    main()
