"""A fake LinkedIn: the OAuth consent and token endpoints, and the ASSUMED Page-messaging resource.

    async with run_fake_linkedin() as li:
        channel = LinkedInChannel({..., "oauth_url": li.url}, {...}, api_url=li.url)
        li.rate_limit_next(retry_after=3)
        ...
        assert li.sent[0]["thread"] == THREAD

It serves, on 127.0.0.1 (uvicorn in a background thread, like the other fakes), both hosts LinkedIn uses
(www.linkedin.com's OAuth and api.linkedin.com's REST) from one URL:

- DOCUMENTED shapes: ``GET /oauth/v2/authorization`` (the admin's consent: redirects back with ``code`` and
  ``state``, or ``error``), ``POST /oauth/v2/accessToken`` (form; ``authorization_code`` and
  ``refresh_token`` grants; OAuth errors as ``{"error", "error_description"}``), REST errors in LinkedIn's
  envelope ``{"status", "serviceErrorCode", "code", "message"}``, the version headers, and
  ``GET /rest/organizationAcls?q=roleAssignee`` (who consented: the Pages the token's member administers).
- ASSUMED (our own contract, LinkedIn has no public Page-message API): ``POST /rest/organizationMessages``
  with ``{"organization", "thread" or "recipient", "text"}`` answered ``201`` with ``x-restli-id``, and the inbound
  ``PAGE_MESSAGE`` webhook body built by ``page_message``.

``signed_webhook`` gives a body and its ``X-LI-Signature`` (documented) as LinkedIn would post them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.serve import off_loop, serve_in_thread

CLIENT_ID = "86fakeLinkedIn01"
CLIENT_SECRET = "WPL_AP1.fakeLinkedInSecret.Qm9vZ2xl=="
PAGE_URN = "urn:li:organization:2414183"
OTHER_PAGE_URN = "urn:li:organization:1035"
ADMIN_URN = "urn:li:person:AdminX7kQ2p"  # the Page admin who completes the consent
MEMBER_URN = "urn:li:person:Dn4Vx9aB2c"
MEMBER_NAME = "Dana Vex"
OTHER_MEMBER_URN = "urn:li:person:Sm8Ro3eT1u"
OTHER_MEMBER_NAME = "Sam Roe"
THREAD = "thr_2-Yjk1ZGYzZjQ"  # ASSUMED shape of a conversation id
OTHER_THREAD = "thr_2-QmFyZm9vYmF6"
ACCESS_TOKEN = "AQVfakeLinkedInAdminAccessToken0123456789"
REFRESH_TOKEN = "AQWfakeLinkedInAdminRefreshToken0123456789"
SCOPE = "rw_organization_admin"
ACCESS_TTL_S = 5_184_000  # 60 days
REFRESH_TTL_S = 31_536_000  # 365 days
MESSAGES_PATH = "/rest/organizationMessages"  # ASSUMED
ACLS_PATH = "/rest/organizationAcls"  # documented: the authenticated member's roles on organizations
MAX_TEXT = 8000  # ASSUMED, as channels/linkedin.py
_ids = itertools.count(1)


@dataclass
class _Failure:
    status: int
    code: str
    message: str
    service_code: int
    retry_after: int | None = None


def rest_error(status: int, code: str, message: str, service_code: int = 0, *,
               retry_after: int | None = None) -> JSONResponse:
    headers = {"retry-after": str(retry_after)} if retry_after else None
    return JSONResponse({"status": status, "serviceErrorCode": service_code, "code": code, "message": message},
                        status_code=status, headers=headers)


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


class FakeLinkedIn:
    def __init__(self) -> None:
        self.url = ""  # set once serving: both the channel's api_url and its config's oauth_url
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.admin = ADMIN_URN  # who is "signed in" when a consent is opened
        self.tokens: dict[str, str] = {ACCESS_TOKEN: ADMIN_URN}  # access token -> member
        self.refresh_tokens: dict[str, str] = {REFRESH_TOKEN: ADMIN_URN}
        self.admins: dict[str, set[str]] = {PAGE_URN: {ADMIN_URN}}  # organization -> its ADMINISTRATORs
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (redirect_uri, member); one use each
        self.consents: list[dict[str, str]] = []  # each consent's query
        self.token_calls: list[dict[str, str]] = []  # each token request's form
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # messaging calls (method, path, body)
        self.sent: list[dict[str, Any]] = []  # each accepted message, with its "id" and the version it used
        self.deny_consent = False  # the admin presses Cancel
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/oauth/v2/authorization", self._authorize, methods=["GET"]),
            Route("/oauth/v2/accessToken", self._token, methods=["POST"]),
            Route(MESSAGES_PATH, self._message, methods=["POST"]),
            Route(ACLS_PATH, self._acls, methods=["GET"]),
        ])

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(self, status: int, code: str, message: str = "", *, times: int = 1, service_code: int = 0,
                  retry_after: int | None = None) -> None:
        """The next sends fail with this REST error (the OAuth endpoints are not affected)."""
        with self._lock:
            self._failures.extend(_Failure(status, code, message or code, service_code, retry_after)
                                  for _ in range(times))

    def rate_limit_next(self, *, times: int = 1, retry_after: int | None = 3) -> None:
        self.fail_next(429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION DAY limit for calls to this "
                       "resource is reached.", times=times, retry_after=retry_after)

    def server_error_next(self, times: int = 1) -> None:
        self.fail_next(500, "INTERNAL_SERVER_ERROR", "Internal Server Error", times=times)

    def block_next(self, times: int = 1) -> None:
        """ASSUMED: how the messaging resource would refuse a conversation the member closed."""
        self.fail_next(403, "THREAD_CLOSED", "The member is no longer reachable in this conversation.",
                       times=times)

    def inject(self, failure: str) -> None:
        """The contract suite's names (tests/fakes/kits.py)."""
        {"rate_limited": self.rate_limit_next, "blocked": self.block_next,
         "server_error": self.server_error_next}[failure]()

    def expire_token(self, token: str = ACCESS_TOKEN) -> None:
        self.tokens.pop(token, None)

    def sent_to(self, thread: str) -> list[dict[str, Any]]:
        """What was sent into a conversation, named by its thread or (written first) by its member."""
        return [m for m in self.sent if thread in (m.get("thread"), m.get("recipient"))]

    # -- OAuth (documented shapes) ---------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.consents.append(query)
        redirect, state = query.get("redirect_uri", ""), query.get("state", "")
        if query.get("client_id") != self.client_id or not redirect:
            return oauth_error(400, "invalid_request", "The passed in client_id or redirect_uri is invalid")
        if query.get("response_type") != "code":
            return oauth_error(400, "unsupported_response_type", "response_type must be code")
        if SCOPE not in query.get("scope", "").split():
            return _back(redirect, error="unauthorized_scope_error", state=state,
                         error_description=f"Scope {SCOPE} was not requested")
        if self.deny_consent:
            return _back(redirect, error="user_cancelled_authorize", state=state,
                         error_description="The user cancelled the authorization")
        code = f"AQTcode{next(_ids):08d}"
        self.codes[code] = (redirect, self.admin)
        return _back(redirect, code=code, state=state)

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_calls.append(form)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return oauth_error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if found is None or found[0] != form.get("redirect_uri"):
                return oauth_error(400, "invalid_request", "Unable to retrieve access token: appid/redirect uri/"
                                   "code verifier does not match authorization code. Or authorization code expired.")
            member = found[1]
        elif grant == "refresh_token":
            member_or_none = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if member_or_none is None:
                return oauth_error(400, "invalid_request", "The provided refresh token is invalid")
            member = member_or_none
        else:
            return oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
        n = next(_ids)
        access, refresh = f"AQVissued{n:08d}{'x' * 24}", f"AQWissued{n:08d}{'y' * 24}"
        self.tokens[access] = member
        self.refresh_tokens[refresh] = member
        return JSONResponse({"access_token": access, "expires_in": ACCESS_TTL_S, "refresh_token": refresh,
                             "refresh_token_expires_in": REFRESH_TTL_S, "scope": SCOPE})

    async def _acls(self, request: Request) -> Response:
        """``q=roleAssignee``: the token's member's APPROVED roles (filtered by ``role``), one element per Page."""
        auth = request.headers.get("authorization", "")
        member = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if member is None:
            return rest_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if request.query_params.get("q") != "roleAssignee":
            return rest_error(400, "ILLEGAL_ARGUMENT", "Unsupported finder", 100)
        role = request.query_params.get("role", "ADMINISTRATOR")
        elements = [{"roleAssignee": member, "organization": page, "role": "ADMINISTRATOR", "state": "APPROVED"}
                    for page, admins in sorted(self.admins.items()) if member in admins and role == "ADMINISTRATOR"]
        return JSONResponse({"paging": {"start": 0, "count": 100, "total": len(elements), "links": []},
                             "elements": elements})

    # -- the ASSUMED messaging resource ------------------------------------------------------------

    async def _message(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return rest_error(400, "BAD_REQUEST", "Request body is not JSON", 100)
        self.calls.append(("POST", request.url.path, body))
        auth = request.headers.get("authorization", "")
        member = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if member is None:
            return rest_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        version = request.headers.get("linkedin-version", "")
        if not re.fullmatch(r"[0-9]{6}(\.[0-9]{2})?", version):
            return rest_error(400, "VERSION_MISSING", "A version must be present. Please specify a version by "
                              "adding the LinkedIn-Version header.")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return rest_error(400, "BAD_REQUEST", "X-Restli-Protocol-Version must be 2.0.0")
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return rest_error(failure.status, failure.code, failure.message, failure.service_code,
                              retry_after=failure.retry_after)
        if not isinstance(body, dict) or member not in self.admins.get(str(body.get("organization")), set()):
            return rest_error(403, "ACCESS_DENIED", "Not enough permissions to act for this organization", 100)
        thread, recipient, text = body.get("thread"), body.get("recipient"), body.get("text")
        to_member = isinstance(recipient, str) and recipient.startswith("urn:li:person:") and thread is None
        if not to_member and (not isinstance(thread, str) or not thread):  # ASSUMED: a thread, or a member
            return rest_error(422, "FIELD_VALIDATION_ERROR", "/thread or /recipient is required")
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            return rest_error(422, "FIELD_VALIDATION_ERROR", f"/text must be 1 to {MAX_TEXT} characters")
        message_id = f"urn:li:organizationMessage:{next(_ids)}"
        self.sent.append({**body, "id": message_id, "version": version})
        return Response(status_code=201, headers={"x-restli-id": message_id})


def _back(redirect: str, **params: str) -> RedirectResponse:
    joiner = "&" if "?" in redirect else "?"
    return RedirectResponse(f"{redirect}{joiner}{urlencode(params)}", status_code=302)


# -- serving -----------------------------------------------------------------------------------------

@contextmanager
def serve_fake_linkedin() -> Iterator[FakeLinkedIn]:
    """Serve a ``FakeLinkedIn`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeLinkedIn()
    with serve_in_thread(fake.app, "fake-linkedin") as url:
        fake.url = url
        yield fake


@asynccontextmanager
async def run_fake_linkedin() -> AsyncIterator[FakeLinkedIn]:
    """The same, for async tests (start and stop happen off the event loop)."""
    async with off_loop(serve_fake_linkedin()) as fake:
        yield fake


# -- webhooks as LinkedIn would post them ------------------------------------------------------------

def page_message(text: str, *, sender: str = MEMBER_URN, name: str | None = MEMBER_NAME, thread: str = THREAD,
                 organization: str = PAGE_URN, message_id: str | None = None,
                 created_at: int | None = None) -> dict[str, Any]:
    """ASSUMED body of a member's message to the Page (the reference's suggested contract)."""
    n = next(_ids)
    payload: dict[str, Any] = {"type": "PAGE_MESSAGE", "organization": organization, "from": sender,
                               "thread": thread, "text": text, "createdAt": created_at or 1_767_225_600_000 + n}
    if name is not None:
        payload["fromName"] = name
    payload["id"] = message_id or f"msg_{n:08d}"
    return payload


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(raw: bytes, client_secret: str = CLIENT_SECRET) -> dict[str, str]:
    """``X-LI-Signature`` (documented): hex HMAC-SHA256 keyed with the client secret over "hmacsha256=" + body."""
    return {"X-LI-Signature": hmac.new(client_secret.encode(), b"hmacsha256=" + raw, hashlib.sha256).hexdigest()}


def signed_webhook(payload: dict[str, Any], client_secret: str = CLIENT_SECRET) -> tuple[bytes, dict[str, str]]:
    """A webhook POST's body and headers, signed as LinkedIn signs them."""
    raw = body(payload)
    return raw, {"Content-Type": "application/json", **sign(raw, client_secret)}


def challenge_response(challenge_code: str, client_secret: str = CLIENT_SECRET) -> str:
    """The validation answer LinkedIn expects (documented), computed independently of the channel."""
    return hmac.new(client_secret.encode(), challenge_code.encode(), hashlib.sha256).hexdigest()
