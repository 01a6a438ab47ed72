"""Security headers on every HTTP answer: console pages, the /v1 API, webhooks (issue 13 §5).

Added as the last of Reflex's ``api_transformer``s (app/app.py), so it wraps the console's
compiled pages, Reflex's own routes, the API and the webhook receiver alike. WebSocket traffic
(the console's socket) passes untouched: these headers mean nothing there, and its Origin is
checked by Reflex's ``cors_allowed_origins`` (rxconfig.py).

Policies:

- Everywhere: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no clickjacking of the
  console), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a setup link's
  token never leaks to another site through the Referer header).
- Console pages: the compiled Reflex app runs inline bootstrap scripts and Radix/emotion inject
  inline styles, and a few Reflex events evaluate script (``rx.call_script``), so scripts and
  styles allow ``'unsafe-inline'`` (and ``'unsafe-eval'``) from our own origin only. What the policy
  still buys: no script, style, image or connection to any other host, no plugins, no ``<base>``
  rewriting, forms post only to us, and no framing. Connections: ``'self'`` plus ``ws(s)://`` of
  the console's origins, for browsers that do not count the socket as ``'self'``.
- API and webhook answers (JSON): ``default-src 'none'``; nothing in them should ever run.
- ``/v1/docs`` (Swagger UI): FastAPI loads it from cdn.jsdelivr.net, so that host is allowed there.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings, get_settings

API_PREFIX = "/v1/"
DOCS_PATH = "/v1/docs"
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "img-src 'self' data: https://fastapi.tiangolo.com; object-src 'none'; base-uri 'self'; "
               "frame-ancestors 'none'")
COMMON = (("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"),
          ("referrer-policy", "no-referrer"))


def console_policy(settings: Settings) -> str:
    sockets = " ".join(origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
                       for origin in settings.console_origins)
    return "; ".join((
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        f"connect-src 'self' {sockets}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


class SecurityHeaders:
    """ASGI middleware: sets the headers on each HTTP response start, unless a route set its own."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        self.app = app
        self.console_policy = console_policy(settings or get_settings())

    def policy_for(self, path: str) -> str:
        if path == DOCS_PATH:
            return DOCS_POLICY
        if path.startswith(API_PREFIX):
            return API_POLICY
        return self.console_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", policy)
                for name, value in COMMON:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def wrap(app: ASGIApp) -> ASGIApp:
    """The ``api_transformer`` form: Reflex calls it with the app built so far."""
    return SecurityHeaders(app)
