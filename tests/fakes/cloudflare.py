"""A fake Cloudflare API v4 (reference/email.md): the calls the EMAIL channel makes on the customer's account.

    async with run_fake_cloudflare() as cloudflare:
        client = httpx.AsyncClient(base_url=cloudflare.api_url, headers={"Authorization": f"Bearer {API_TOKEN}"})
        cloudflare.fail_sends(10004, 429)
        ...
        assert cloudflare.sent[0]["to"] == "dana@example.com"

It serves, on 127.0.0.1 (uvicorn in a background thread, like the other fakes) under ``/client/v4``:
``GET /user/tokens/verify`` and ``GET /accounts/{account_id}/tokens/verify``; ``GET /zones?name=&account.id=``;
``GET /zones/{zone_id}/email/routing``; ``GET|POST /zones/{zone_id}/email/routing/rules``,
``GET|DELETE .../rules/{rule_id}``, ``GET|PUT .../rules/catch_all``; ``PUT /accounts/{account_id}/workers/scripts/
{script_name}`` (multipart module upload); ``POST /accounts/{account_id}/email/sending/send``. Every answer is
Cloudflare's envelope ``{"success", "errors": [{"code", "message"}], "messages", "result"}``.

Tokens carry permission groups by name (``PERMISSIONS``; Cloudflare's API spells the "Edit" ones "Write", and both
are accepted). Each call needs what Cloudflare's API reference lists for it: ``GET /zones`` Zone Read; ``GET
.../email/routing`` Zone Settings Read or Edit (not an Email Routing group); the rules Email Routing Rules Read or
Edit (changes: Edit); the Worker upload Workers Scripts Edit; the send Email Sending Edit. A call without it, or
with an unknown token, is answered 403 ``10000 Authentication error``; the verify endpoints answer an unknown token
401 ``1000 Invalid API Token``, and the send endpoint uses its own documented 10101/10102. Cloudflare does not
document the codes of a refused routing rule: the fake answers 400 with ``ROUTING_ERROR_CODE`` and a plain message.

Test controls: ``add_token``, ``revoke_token``, ``add_zone``, ``set_routing``, ``set_sending``, ``fail_sends``;
``verified_destinations`` (for forward actions), ``bounces`` (recipients reported as permanent bounces),
``return_message_id``. Records: ``scripts``, ``rules`` and ``catch_all`` (per zone id), ``sent``, ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from tests.fakes.cloudflare_email import CloudflareError, check_send, envelope
from tests.fakes.cloudflare_zones import (
    ALL_PERMISSIONS,
    AUTH_ERROR,
    EMAIL_ROUTING_RULES_EDIT,
    EMAIL_ROUTING_RULES_READ,
    EMAIL_SENDING_EDIT,
    PERMISSIONS,
    ROUTING_ERROR_CODE,
    RULES_READ,
    WORKERS_SCRIPTS_EDIT,
    ZONE_READ,
    ZONE_SETTINGS_EDIT,
    ZONE_SETTINGS_READ,
    Token,
    Zone,
    ZonesApi,
)
from tests.fakes.serve import off_loop, serve_in_thread

__all__ = [
    "ACCOUNT_ID", "ALL_PERMISSIONS", "API_TOKEN", "DOMAIN", "EMAIL_ROUTING_RULES_EDIT", "EMAIL_ROUTING_RULES_READ",
    "EMAIL_SENDING_EDIT", "PERMISSIONS", "ROUTING_ERROR_CODE", "WORKERS_SCRIPTS_EDIT", "ZONE_ID", "ZONE_READ",
    "ZONE_SETTINGS_EDIT", "ZONE_SETTINGS_READ", "CloudflareError", "FakeCloudflare", "Token", "Zone",
    "run_fake_cloudflare", "serve_fake_cloudflare",
]

ACCOUNT_ID = "5c1f0e9a7b2d4c6e8f0a1b2c3d4e5f60"
ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353"
DOMAIN = "acme.example"
API_TOKEN = "IcFakeCloudflareToken_0123456789abcdefXY"  # 40 characters, like Cloudflare's


@dataclass
class _Failure:
    code: int
    status: int
    retry_after: int | None


Handler = Callable[[Request, Token], Awaitable[Response]]


class FakeCloudflare(ZonesApi):
    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.url = ""  # set once serving; the API base is api_url
        self.tokens: dict[str, Token] = {}
        self.zones: dict[str, Zone] = {}
        self.rules: dict[str, list[dict[str, Any]]] = {}  # zone id -> routing rules, in creation order
        self.catch_all: dict[str, dict[str, Any]] = {}  # zone id -> its catch-all rule
        self.scripts: dict[str, dict[str, Any]] = {}  # name -> {"source", "metadata", "bindings", ...}
        self.verified_destinations: set[str] = set()  # addresses a "forward" action may name
        self.bounces: set[str] = set()  # recipients a send reports as permanent_bounces
        self.bounce_once: set[str] = set()  # recipients the next send to them reports bounced, once
        self.sent: list[dict[str, Any]] = []  # each accepted send's JSON body, plus "received_at"
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call
        # One version of Cloudflare's API reference lists message_id in the send result; the docs' example has none.
        self.return_message_id = False
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.add_token(API_TOKEN)
        self.add_zone(DOMAIN, ZONE_ID)
        api = [
            Route("/user/tokens/verify", self._verify_user, methods=["GET"]),
            Route("/accounts/{account_id}/tokens/verify", self._verify_account, methods=["GET"]),
            Route("/zones", self._api(self._zones, ZONE_READ), methods=["GET"]),
            Route("/zones/{zone_id}/email/routing", self._api(self._routing, ZONE_SETTINGS_READ, ZONE_SETTINGS_EDIT),
                  methods=["GET"]),
            Route("/zones/{zone_id}/email/routing/rules", self._api(self._list_rules, *RULES_READ), methods=["GET"]),
            Route("/zones/{zone_id}/email/routing/rules", self._api(self._create_rule, EMAIL_ROUTING_RULES_EDIT),
                  methods=["POST"]),
            Route("/zones/{zone_id}/email/routing/rules/catch_all", self._api(self._get_catch_all, *RULES_READ),
                  methods=["GET"]),
            Route("/zones/{zone_id}/email/routing/rules/catch_all",
                  self._api(self._put_catch_all, EMAIL_ROUTING_RULES_EDIT), methods=["PUT"]),
            Route("/zones/{zone_id}/email/routing/rules/{rule_id}", self._api(self._get_rule, *RULES_READ),
                  methods=["GET"]),
            Route("/zones/{zone_id}/email/routing/rules/{rule_id}",
                  self._api(self._delete_rule, EMAIL_ROUTING_RULES_EDIT), methods=["DELETE"]),
            Route("/accounts/{account_id}/workers/scripts/{script_name}",
                  self._api(self._upload_script, WORKERS_SCRIPTS_EDIT), methods=["PUT"]),
            Route("/accounts/{account_id}/email/sending/send", self._send, methods=["POST"]),
        ]
        self.app = Starlette(routes=[Mount("/client/v4", routes=api)],
                             exception_handlers={HTTPException: _route_error})

    @property
    def api_url(self) -> str:
        return f"{self.url}/client/v4"

    # -- test controls ---------------------------------------------------------------------------

    def add_token(self, token: str, permissions: set[str] | frozenset[str] | None = None, *,
                  account_id: str = ACCOUNT_ID, account_owned: bool = False) -> Token:
        """A token with these permission groups (default: all). "X Write" is read as "X Edit"."""
        granted = ALL_PERMISSIONS if permissions is None else frozenset(
            re.sub(r" Write$", " Edit", name) for name in permissions)
        self.tokens[token] = Token(token, uuid.uuid4().hex, granted, account_id, account_owned)
        return self.tokens[token]

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def add_zone(self, name: str, zone_id: str | None = None, *, account_id: str = ACCOUNT_ID) -> Zone:
        zone = Zone(zone_id or uuid.uuid4().hex, name.lower(), account_id)
        self.zones[zone.id] = zone
        self.rules[zone.id] = []
        self.catch_all[zone.id] = {"id": uuid.uuid4().hex, "name": "", "enabled": False,
                                   "matchers": [{"type": "all"}], "actions": [{"type": "drop"}]}
        self.catch_all[zone.id]["tag"] = self.catch_all[zone.id]["id"]
        return zone

    def set_routing(self, enabled: bool, *, status: str | None = None, zone_id: str = ZONE_ID) -> None:
        """Email Routing on (``ready``) or off (``unconfigured``) for the zone, or any status Cloudflare reports."""
        zone = self.zones[zone_id]
        zone.routing_enabled = enabled
        zone.routing_status = status or ("ready" if enabled else "unconfigured")

    def set_sending(self, *, onboarded: bool = True, enabled: bool = True, zone_id: str = ZONE_ID) -> None:
        """Whether the zone's domain is onboarded to Email Sending, and whether sending is on for it."""
        zone = self.zones[zone_id]
        zone.sending_onboarded, zone.sending_enabled = onboarded, enabled

    def fail_sends(self, code: int, status: int | None = None, times: int = 1, *,
                   retry_after: int | None = None) -> None:
        """The next ``times`` sends fail with this Email Sending error (status: the documented one if omitted).
        A 429 carries ``Retry-After`` (1 s unless given)."""
        with self._lock:
            self._failures.extend(_Failure(code, status or 0, retry_after) for _ in range(times))

    # -- authentication --------------------------------------------------------------------------

    def _api(self, handler: Handler, *needs: str) -> Callable[[Request], Awaitable[Response]]:
        """Log, authenticate, check that the token holds one of ``needs``, and turn errors into envelopes."""
        async def endpoint(request: Request) -> Response:
            try:
                token = await self._authenticate(request, AUTH_ERROR)
                if needs and not token.permissions & set(needs):
                    raise CloudflareError(*AUTH_ERROR)
                return await handler(request, token)
            except CloudflareError as exc:
                return exc.response()
        return endpoint

    async def _authenticate(self, request: Request, unknown: tuple[int, int, str]) -> Token:
        self.requests.append((request.method, request.url.path))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        header = request.headers.get("authorization")
        if header is None:
            raise CloudflareError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        scheme, _, value = header.partition(" ")
        if scheme != "Bearer" or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise CloudflareError(400, 6003, "Invalid request headers",
                                  chain=[(6111, "Invalid format for Authorization header")])
        token = self.tokens.get(value)
        if token is None:
            raise CloudflareError(*unknown)
        return token

    async def _verify_user(self, request: Request) -> Response:
        return await self._verify(request, None)

    async def _verify_account(self, request: Request) -> Response:
        return await self._verify(request, request.path_params["account_id"])

    async def _verify(self, request: Request, account_id: str | None) -> Response:
        invalid = (401, 1000, "Invalid API Token")
        try:
            token = await self._authenticate(request, invalid)
            # A user token is verified at /user/..., an account-owned one at its own account's path.
            if token.account_owned != (account_id is not None) or account_id not in (None, token.account_id):
                raise CloudflareError(*invalid)
        except CloudflareError as exc:
            return exc.response()
        return envelope({"id": token.id, "status": "active"},
                        messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}])


    async def _send(self, request: Request) -> Response:
        try:
            token = await self._authenticate(request, (401, 10101, "email.sending.error.authentication.unauthorized"))
            if EMAIL_SENDING_EDIT not in token.permissions or request.path_params["account_id"] != token.account_id:
                raise CloudflareError.sending(10102)
            return self._accept_send(await request.body(), token)
        except CloudflareError as exc:
            return exc.response()

    def _accept_send(self, raw: bytes, token: Token) -> Response:
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise CloudflareError.sending(10001) from exc
        zones = [z for z in self.zones.values() if z.account_id == token.account_id and z.sending_onboarded]
        sender, recipients = check_send(len(raw), body, {z.name for z in zones})
        if not next(z for z in zones if z.name == sender.rpartition("@")[2].lower()).sending_enabled:
            raise CloudflareError.sending(10203)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            retry = failure.retry_after or 1
            error = CloudflareError.sending(failure.code)
            error.status = failure.status or error.status
            error.headers = {"Retry-After": str(retry)} if error.status == 429 else None
            raise error
        self.sent.append({**body, "received_at": time.monotonic()})
        bounced = [r for r in recipients if r.lower() in self.bounces or r.lower() in self.bounce_once]
        self.bounce_once -= {r.lower() for r in bounced}
        result: dict[str, Any] = {"delivered": [r for r in recipients if r not in bounced],
                                  "permanent_bounces": bounced, "queued": []}
        if self.return_message_id:
            result["message_id"] = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
        return envelope(result)


async def _route_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return CloudflareError(405, 10405, "Method not allowed").response()
    return CloudflareError(404 if status == 404 else status, 7000, "No route for that URI").response()


# -- serving -----------------------------------------------------------------------------------------

@contextmanager
def serve_fake_cloudflare(latency_s: float = 0.0) -> Iterator[FakeCloudflare]:
    """Serve a ``FakeCloudflare`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeCloudflare(latency_s)
    with serve_in_thread(fake.app, "fake-cloudflare") as url:
        fake.url = url
        yield fake


@asynccontextmanager
async def run_fake_cloudflare(latency_s: float = 0.0) -> AsyncIterator[FakeCloudflare]:
    """The same, for async tests (start and stop happen off the event loop)."""
    async with off_loop(serve_fake_cloudflare(latency_s)) as fake:
        yield fake
