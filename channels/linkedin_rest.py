"""LinkedIn's answers as the product understands them: the REST error envelope, what a failed send means to
the outbox, and the OAuth token endpoint (shared/reference/linkedin.md, "OAuth" and "REST conventions").

The error envelope ``{"status", "serviceErrorCode", "code", "message"}`` is LinkedIn's (e.g. 401
``{"serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", ...}``); which codes the ASSUMED messaging
resource would answer for a closed conversation is our guess (``UNREACHABLE_CODES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from channels import types as t
from channels.errors import SetupError
from channels.types import SendResult

DEFAULT_RETRY_AFTER_S = 60.0  # LinkedIn's throttles are per day and per minute; its 429 may carry no Retry-After
# ASSUMED: how the messaging resource would say the member closed, left or blocked the conversation.
UNREACHABLE_CODES = frozenset({"THREAD_CLOSED", "RECIPIENT_UNREACHABLE"})
VERSION_SUNSET = 426  # reported for a sunset LinkedIn-Version (third-party summary of the docs, unverified here)
VERSION_SUNSET_CODE = "linkedin_version_sunset"


@dataclass(frozen=True, slots=True)
class LinkedInError:
    status: int
    code: str | None
    service_code: int | None
    message: str

    @classmethod
    def of(cls, response: httpx.Response) -> LinkedInError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(response.status_code, None, None, response.reason_phrase or "error")
        service = body.get("serviceErrorCode")
        code = body.get("code")
        return cls(status=response.status_code, code=code if isinstance(code, str) else None,
                   service_code=service if isinstance(service, int) else None,
                   message=str(body.get("message") or response.reason_phrase or "error")[:300])

    def describe(self) -> str:
        """``linkedin INVALID_ACCESS_TOKEN/65600 Invalid access token (HTTP 401)``."""
        names = "/".join(str(part) for part in (self.code, self.service_code) if part is not None)
        return f"linkedin {names + ' ' if names else ''}{self.message} (HTTP {self.status})"


def send_failure(response: httpx.Response) -> SendResult:
    """A send LinkedIn refused: throttling and server trouble retry; a refused token, an unreachable member,
    a sunset API version or a bad request do not."""
    error = LinkedInError.of(response)
    reason = error.describe()
    if response.status_code == 429:
        return SendResult.failed(t.RATE_LIMITED, reason, retryable=True,
                                 retry_after=retry_after(response) or DEFAULT_RETRY_AFTER_S)
    if response.status_code >= 500:
        return SendResult.failed(t.SERVER_ERROR, reason, retryable=True)
    if response.status_code == 401:
        return SendResult.failed(t.UNAUTHORIZED, f"{reason}; an admin must complete LinkedIn's consent again",
                                 retryable=False)
    if error.code in UNREACHABLE_CODES:
        return SendResult.failed(t.BLOCKED, reason, retryable=False)
    if response.status_code == 403:  # ACCESS_DENIED: the token lacks the permission or the admin role
        return SendResult.failed(t.UNAUTHORIZED, reason, retryable=False)
    if response.status_code == VERSION_SUNSET:
        return SendResult.failed(VERSION_SUNSET_CODE, f"{reason}; set a current api_version", retryable=False)
    return SendResult.failed(t.BAD_REQUEST, reason, retryable=False)


def transport_failure(exc: httpx.HTTPError) -> SendResult:
    return SendResult.failed(t.NETWORK, f"linkedin unreachable: {type(exc).__name__}", retryable=True)


def retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value > 0 else None


# -- the OAuth token endpoint (documented) -------------------------------------------------------------

async def token_request(http: httpx.AsyncClient, url: str, form: dict[str, str], *, what: str) -> dict[str, Any]:
    """POST the form to ``/oauth/v2/accessToken``; the tokens with ``access_token_expires_at`` (ISO) added.
    ``SetupError`` with a stable code when LinkedIn refuses or cannot be reached."""
    try:
        response = await http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SetupError(f"LinkedIn could not be reached for {what}: {type(exc).__name__}",
                         code="linkedin_unreachable") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code != 200 or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise _token_refusal(response.status_code, body, what)
    expires_in = body.get("expires_in")
    tokens: dict[str, Any] = {key: body[key] for key in ("access_token", "refresh_token", "expires_in",
                                                         "refresh_token_expires_in", "scope") if key in body}
    if isinstance(expires_in, int) and expires_in > 0:
        tokens["access_token_expires_at"] = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    return tokens


def _token_refusal(status: int, body: dict[str, Any], what: str) -> SetupError:
    error = str(body.get("error") or body.get("code") or f"HTTP {status}")
    description = str(body.get("error_description") or body.get("message") or "")[:300]
    said = f"LinkedIn refused {what}: {error}{': ' + description if description else ''}"
    if error == "invalid_client" or status == 401:
        return SetupError(said, code="linkedin_invalid_client")
    if error in ("invalid_request", "invalid_grant"):  # an expired or reused code, a redirect URI that differs
        return SetupError(said, code="linkedin_grant_refused")
    if status >= 500:
        return SetupError(said, code="linkedin_unavailable")
    return SetupError(said, code="linkedin_token_refused")


# -- who consented (documented: Community Management, organization access control) ----------------------

ACLS_PATH = "/rest/organizationAcls"


async def page_admin(http: httpx.AsyncClient, api_url: str, access_token: str, page_urn: str, *,
                     version: str) -> str:
    """The member urn of the token's owner, from their APPROVED ADMINISTRATOR role on ``page_urn``
    (``GET /rest/organizationAcls?q=roleAssignee``: the roles of the authenticated member). LinkedIn's token
    answer names nobody, and this check is the one a Page needs anyway. ``SetupError`` codes:
    linkedin_not_page_admin, linkedin_unreachable, linkedin_unavailable, linkedin_token_refused."""
    try:
        response = await http.get(f"{api_url}{ACLS_PATH}", params={
            "q": "roleAssignee", "role": "ADMINISTRATOR", "state": "APPROVED", "count": "100"}, headers={
            "Authorization": f"Bearer {access_token}", "LinkedIn-Version": version,
            "X-Restli-Protocol-Version": "2.0.0"})
    except httpx.HTTPError as exc:
        raise SetupError(f"LinkedIn could not be reached to check the Page role: {type(exc).__name__}",
                         code="linkedin_unreachable") from exc
    if response.status_code != 200:
        error = LinkedInError.of(response).describe()
        code = "linkedin_unavailable" if response.status_code >= 500 else "linkedin_token_refused"
        raise SetupError(f"LinkedIn refused the Page role lookup: {error}", code=code)
    try:
        elements = response.json().get("elements")
    except (ValueError, AttributeError):
        elements = None
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        # ``organization`` in current versions; ``organizationTarget`` / ``organizationalTarget`` in older ones.
        target = element.get("organization") or element.get("organizationTarget") or element.get("organizationalTarget")
        member = element.get("roleAssignee")
        if (target == page_urn and element.get("role") == "ADMINISTRATOR" and element.get("state") == "APPROVED"
                and isinstance(member, str) and member.startswith(("urn:li:person:", "urn:li:member:"))):
            return member[:100]
    raise SetupError(f"the LinkedIn member who consented is not an administrator of the Page {page_urn}: ask one of "
                     "its admins (Page → Admin tools → Manage admins) to open the consent link",
                     code="linkedin_not_page_admin")
