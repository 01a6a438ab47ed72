"""Graph API answers as the product understands them: the error envelope, what a failed send means to the
outbox, what a failed setup blames (reference/whatsapp.md, "Graph error envelope and useful codes")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from channels import types as t
from channels.errors import SetupError
from channels.types import SendResult

# Throttling, with how long to wait when Graph gives no Retry-After: app-level (4, 80007), the number's
# throughput (130429), the spam limit (131048) and the pair rate to one person (131056).
RATE_LIMIT_DELAYS_S = {4: 60.0, 80007: 60.0, 130429: 2.0, 131048: 60.0, 131056: 6.0}
DEFAULT_RETRY_AFTER_S = 5.0
TRANSIENT = frozenset({1, 2, 131000, 131016})  # unknown error, service unavailable, "something went wrong"
AUTH = frozenset({0, 102, 190, 463, 467})  # the token is invalid, expired or revoked
PERMISSION = frozenset({3, 10, *range(200, 300)})
UNREACHABLE = frozenset({131021, 131026, 131030})  # sender = recipient, not on WhatsApp, not an allowed test number
WINDOW_CLOSED = 131047  # re-engagement: more than 24 hours since the person last wrote (WA-4)
UNKNOWN_OBJECT = 100  # a phone number id that does not exist or this token cannot see
WINDOW_CLOSED_CODE = "whatsapp_window_closed"


@dataclass(frozen=True, slots=True)
class GraphError:
    """Graph's ``{"error": {...}}`` envelope (or what stands in for it when the body is not one)."""

    status: int
    code: int | None
    title: str
    details: str
    fbtrace_id: str | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> GraphError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(response.status_code, None, response.reason_phrase or "error", "")
        code = error.get("code")
        message = str(error.get("error_user_title") or error.get("message") or "error")
        data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        return cls(status=response.status_code, code=code if isinstance(code, int) else None,
                   title=_without_code_prefix(message, code),
                   details=str(data.get("details") or error.get("error_user_msg") or ""),
                   fbtrace_id=error.get("fbtrace_id"))

    def describe(self) -> str:
        """``graph 131047 Re-engagement message: Message failed to send because ... (HTTP 400)``."""
        code = f" {self.code}" if self.code is not None else ""
        details = f": {self.details}" if self.details else ""
        return f"graph{code} {self.title}{details} (HTTP {self.status})"


def _without_code_prefix(message: str, code: Any) -> str:
    prefix = f"(#{code}) "  # Graph writes "(#131047) Re-engagement message"
    return message[len(prefix):] if message.startswith(prefix) else message


def send_failure(response: httpx.Response) -> SendResult:
    """A send Graph refused: throttling and server trouble retry (with the delay Graph asks for, or a
    default per kind of limit); an expired token, an unreachable person, a closed window or a bad request
    do not, and Graph's code, title and details are the reason the delivery shows."""
    error = GraphError.of(response)
    reason = error.describe()
    if response.status_code == 429 or error.code in RATE_LIMIT_DELAYS_S:
        delay = _retry_after(response) or RATE_LIMIT_DELAYS_S.get(error.code or 0, DEFAULT_RETRY_AFTER_S)
        return SendResult.failed(t.RATE_LIMITED, reason, retryable=True, retry_after=delay)
    if response.status_code >= 500 or error.code in TRANSIENT:
        return SendResult.failed(t.SERVER_ERROR, reason, retryable=True)
    if response.status_code == 401 or error.code in AUTH or error.code in PERMISSION:
        return SendResult.failed(t.UNAUTHORIZED, reason, retryable=False)
    if error.code == WINDOW_CLOSED:
        return SendResult.failed(WINDOW_CLOSED_CODE, reason, retryable=False)
    if error.code in UNREACHABLE:
        return SendResult.failed(t.BLOCKED, reason, retryable=False)
    return SendResult.failed(t.BAD_REQUEST, reason, retryable=False)


def status_failure(errors: Any) -> str:
    """The reason a ``failed`` status gives (its first error), in the words a failed send gives: the stable
    code first (``whatsapp_window_closed`` for 131047), then Graph's code, title and details."""
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code") if isinstance(first.get("code"), int) else None
    data = first.get("error_data") if isinstance(first.get("error_data"), dict) else {}
    title = _without_code_prefix(str(first.get("title") or first.get("message") or "failed"), code)
    error = GraphError(status=200, code=code, title=title, details=str(data.get("details") or ""))
    return f"{_error_code(code)}: {error.describe().removesuffix(' (HTTP 200)')} (reported after sending)"


def _error_code(code: int | None) -> str:
    if code == WINDOW_CLOSED:
        return WINDOW_CLOSED_CODE
    if code in UNREACHABLE:
        return t.BLOCKED
    if code in AUTH or code in PERMISSION:
        return t.UNAUTHORIZED
    if code in RATE_LIMIT_DELAYS_S:
        return t.RATE_LIMITED
    return "failed"


def transport_failure(exc: httpx.HTTPError) -> SendResult:
    """Graph could not be reached or did not answer in time: worth another try."""
    return SendResult.failed(t.NETWORK, f"graph unreachable: {type(exc).__name__}", retryable=True)


def setup_failure(response: httpx.Response) -> SetupError:
    """Why the phone number could not be read with these credentials, blaming the field at fault."""
    error = GraphError.of(response)
    if response.status_code == 401 or error.code in AUTH:
        return SetupError(f"Meta refused the access token: {error.describe()}", code="invalid_token")
    if error.code in PERMISSION:
        return SetupError(f"the access token may not use this number: {error.describe()}",
                          code="token_lacks_permission")
    if error.code == UNKNOWN_OBJECT:
        return SetupError(f"no such phone number id for this token: {error.describe()}", code="unknown_phone_number")
    return SetupError(f"Meta refused the phone number lookup: {error.describe()}", code="setup_failed")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value > 0 else None
