"""Limits before work: one pure ASGI guard in front of everything HTTP (the webhook front, FastAPI,
Reflex's own routes).

- A body is sized before it is read: a ``Content-Length`` above the limit is answered 413 at once,
  without calling the app; a body without one (chunked) is counted as it streams and cut off at the
  limit (413 from the app's own error handler, or from here if nothing answered yet).
- Refusals (401, 403, 413) are counted per client address; after ``IC_REFUSAL_LIMIT`` of them within
  ``IC_REFUSAL_WINDOW_SECONDS`` the client gets a 429 ``rate_limited`` before any work, and the log
  gets one line per client and window (not one per request). Behind a reverse proxy listed in
  ``IC_TRUSTED_PROXIES`` (loopback by default) the address is the one it forwarded for, else
  every client would share the proxy's budget.
- Behind such a proxy, its ``X-Forwarded-Proto`` is the request's scheme, so the URLs the app builds
  from the request (a redirect adding a trailing slash) stay https when the proxy terminates TLS.

Pure ASGI, not ``BaseHTTPMiddleware``: a few microseconds per request on the webhook hot path.
Websockets (Reflex's event socket) and lifespan pass straight through.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.runtime import get_runtime
from app.settings import Settings

log = logging.getLogger("ingram.limits")

REFUSALS = frozenset({401, 403, 413})
MAX_CLIENTS = 10_000  # tracked addresses; beyond it expired windows are dropped (then all, failing open)
_WEBHOOK_SEGMENT = "/webhook/"
_EMAIL_WEBHOOK = "/v1/email/webhook/"  # raw messages with their attachments (IC_MAX_EMAIL_BYTES)


class BodyTooLarge(HTTPException):
    """Raised from the guarded ``receive`` once a streamed body passes the limit. A FastAPI
    ``HTTPException``, so FastAPI's body reader re-raises it and every app answers it as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


def _error(status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
           ) -> tuple[Message, Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                     *(headers or [])]
    return ({"type": "http.response.start", "status": status, "headers": start_headers},
            {"type": "http.response.body", "body": body})


class RefusalCounter:
    """Refusals per client address in fixed windows."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clients: dict[str, list[float]] = {}  # address -> [window start, refusals]

    def retry_after(self, client: str, now: float) -> float:
        """Seconds until the client may try again; 0 when it is not throttled."""
        entry = self._clients.get(client)
        if entry is None or entry[1] < self.limit or self.limit <= 0:
            return 0.0
        left = entry[0] + self.window_s - now
        if left <= 0:
            del self._clients[client]
            return 0.0
        return left

    def refused(self, client: str, status: int, path: str, now: float) -> None:
        entry = self._clients.get(client)
        if entry is None or now - entry[0] >= self.window_s:
            if len(self._clients) >= MAX_CLIENTS:
                self._prune(now)
            self._clients[client] = [now, 1.0]
            return
        entry[1] += 1
        if entry[1] == self.limit:  # one line per client and window
            log.warning("client %s was refused %d times within %.0f s (last: %d on %s); answering 429 "
                        "until the window ends", client, self.limit, self.window_s, status, path)

    def _prune(self, now: float) -> None:
        for client in [c for c, (start, _) in self._clients.items() if now - start >= self.window_s]:
            del self._clients[client]
        if len(self._clients) >= MAX_CLIENTS:
            self._clients.clear()


class Guard:
    """The ASGI app wrapping everything else (last of Reflex's ``api_transformer``s)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._settings: Settings | None = None
        self._counter = RefusalCounter(0, 0.0)

    def counter(self, settings: Settings) -> RefusalCounter:
        if settings is not self._settings:  # a new runtime (tests) starts with a clean slate
            self._settings = settings
            self._counter = RefusalCounter(settings.refusal_limit, settings.refusal_window_seconds)
        return self._counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_runtime().settings
        counter = self.counter(settings)
        client = _client_address(scope, settings.trusted_proxies)
        scheme = _forwarded_scheme(scope, settings.trusted_proxies)
        if scheme is not None and scheme != scope.get("scheme"):
            scope = {**scope, "scheme": scheme}
        path: str = scope["path"]
        now = time.monotonic()
        wait = counter.retry_after(client, now)
        if wait:
            start, body = _error(429, "rate_limited", "too many refused requests from this address; retry later",
                                 [(b"retry-after", str(int(wait) + 1).encode())])
            await send(start)
            await send(body)
            return
        limit = (settings.max_email_bytes if path.startswith(_EMAIL_WEBHOOK) else
                 settings.max_webhook_bytes if _WEBHOOK_SEGMENT in path else settings.max_api_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            counter.refused(client, 413, path, now)
            await _send_too_large(send, limit)
            return
        started = False

        async def send_watching(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] in REFUSALS:
                    counter.refused(client, message["status"], path, time.monotonic())
            await send(message)

        if declared is not None:  # the server holds the body to its Content-Length
            await self.app(scope, receive, send_watching)
            return
        received = 0

        async def receive_counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, receive_counting, send_watching)
        except BodyTooLarge:
            if started:
                raise
            counter.refused(client, 413, path, time.monotonic())
            await _send_too_large(send, limit)


def guard(app: ASGIApp) -> ASGIApp:
    return Guard(app)


async def _send_too_large(send: Send, limit: int) -> None:
    start, body = _error(413, "payload_too_large", f"the request body is larger than {limit} bytes")
    await send(start)
    await send(body)


def _client_address(scope: Scope, trusted_proxies: frozenset[str]) -> str:
    """The peer's address, or behind a trusted reverse proxy the client it forwarded for (the last
    X-Forwarded-For hop that is not itself a trusted proxy: earlier hops are the client's to forge)."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if peer not in trusted_proxies:
        return peer
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            for hop in reversed(value.decode("latin-1").split(",")):
                if (hop := hop.strip()) and hop not in trusted_proxies:
                    return hop
    return peer


def _forwarded_scheme(scope: Scope, trusted_proxies: frozenset[str]) -> str | None:
    """``X-Forwarded-Proto`` (its last hop: the proxy in front of us) when a trusted proxy sent it."""
    peer = scope["client"][0] if scope.get("client") else None
    if peer not in trusted_proxies:
        return None
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
            return proto if proto in ("http", "https") else None
    return None


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers", ())
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
