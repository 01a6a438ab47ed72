"""LinkedIn Page messaging behind its approval gate (issue 18, LI-1..LI-3; shared/reference/linkedin.md).

LinkedIn offers NO self-serve API for a Company Page to receive and answer members' messages (its Messages
API is partner-only and member-initiated). So this module mixes two kinds of code, kept apart:

- DOCUMENTED by LinkedIn: the webhook's validation challenge and ``X-LI-Signature``
  (channels/linkedin_inbound.py), the 3-legged OAuth endpoints (``consent_url``, ``exchange_code``,
  renewal with a refresh token), versioned REST headers (``LinkedIn-Version``, ``X-Restli-Protocol-Version``)
  and the error envelope (channels/linkedin_rest.py).
- ASSUMED, our own invention to be replaced when LinkedIn grants the use case: the inbound Page-message
  payload (``PAGE_MESSAGE``) and the outbound resource ``POST {api_url}/rest/organizationMessages`` with
  ``{"organization", "thread" or "recipient" (a member's urn), "text"}``, answered ``201`` with
  ``x-restli-id``. Both are exercised only
  against the fake (tests/fakes/linkedin.py).

LI-3: nothing moves, in or out, while ``messaging_problem()`` names a reason (no admin consent yet, or
``messaging_enabled`` off). A conversation's address is the thread id; the sender is the member's urn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field

from channels.base import Channel
from channels.errors import ChannelError, SetupError
from channels.linkedin_inbound import KIND, MEMBER_URN_RE, THREAD_RE, parse_body, verify_request
from channels.linkedin_rest import page_admin, send_failure, token_request, transport_failure
from channels.payloads import load_json, publicly_reachable
from channels.types import Capabilities, Inbound, RawRequest, Renewed, SendResult, SetupInfo, Verdict

log = logging.getLogger("channels.linkedin")

OAUTH_URL = "https://www.linkedin.com"  # authorization and token endpoints (the API is on api.linkedin.com)
API_URL = "https://api.linkedin.com"
# Marketing versions live about a year: 202511 sunset on 2026-11-16 (migrations page); 202607 was the
# newest seen when this was written. Kept in the integration's config so an admin can move it on.
API_VERSION = "202607"
RESTLI_PROTOCOL = "2.0.0"
MESSAGES_PATH = "/rest/organizationMessages"  # ASSUMED resource: LinkedIn has no public one for Page messages
# The documented scope a Page admin's token needs. LinkedIn names no scope for Page messages, and a consent
# asking for an unknown scope fails (unauthorized_scope_error), so none is asked until LinkedIn grants the
# use case and names it: then add it here.
CONSENT_SCOPES: tuple[str, ...] = ("rw_organization_admin",)
# No official limit for Page messages; third-party guides give 8,000 characters for a member's message to a
# connection (some say 3,000). ASSUMED here, and enforced by the fake alike.
MAX_TEXT = 8000
RENEW_BEFORE = timedelta(days=7)  # access tokens live about 60 days (unverified); renewed a week ahead
DISABLED_CODE = "linkedin_messaging_disabled"
CONSENT_REQUIRED_CODE = "linkedin_consent_required"
# Kept across a new PUT of the same app and Page: the consent cannot be given again from a form.
CONSENT_FIELDS = ("consent_member", "access_token_expires_at")
PAGE_URN_PATTERN = r"^urn:li:organization:[0-9]{1,20}$"


class LinkedInChannel(Channel):
    kind: ClassVar[str] = "linkedin"
    api_url_setting: ClassVar[str] = "linkedin_api_url"
    can_block: ClassVar[bool] = True  # messaging stays off until switched on after consent (LI-3)
    display_name: ClassVar[str] = "LinkedIn"
    capabilities: ClassVar[Capabilities] = Capabilities(max_chips=0, max_chip_label=75, max_text=MAX_TEXT,
                                                        native_approvals=False)
    send_tool: ClassVar[str] = "linkedin_send_message"
    setup_modes: ClassVar[frozenset[str]] = frozenset()  # LI-2: the agent catch-all, or a conversation by address
    # No conversation proves who owns it (no deep link reaches a Page's inbox): an admin names the owner.
    setup_keys: ClassVar[frozenset[str]] = frozenset({"mode", "owner_member"})

    class Config(Channel.Config):
        client_id: str = Field(default="", max_length=64)
        page_urn: str = Field(default="", pattern=r"^(urn:li:organization:[0-9]{1,20})?$")
        api_version: str = Field(default=API_VERSION, pattern=r"^[0-9]{6}(\.[0-9]{2})?$")
        messaging_enabled: bool = False
        # The Page admin who completed the consent ("" until then).
        consent_member: str = Field(default="", pattern=r"^(urn:li:(person|member):[A-Za-z0-9_-]{1,64})?$")
        access_token_expires_at: str = ""  # ISO, from the token answer: when the renewal is due
        oauth_url: str = ""  # empty: www.linkedin.com, or the API's URL when that is not LinkedIn's (a fake)

    class Secrets(Channel.Secrets):
        client_secret: str = Field(min_length=1, max_length=200)  # also signs every webhook
        access_token: str = Field(default="", max_length=2000)  # the admin's 3-legged token ("" before consent)
        refresh_token: str = Field(default="", max_length=2000)  # only for apps LinkedIn enabled for refresh
        consent_link_hash: str = Field(default="", max_length=64)  # the open consent link's (linkedin_consent)

    class Put(Channel.Put):
        client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                               description="The LinkedIn app's Client ID.")
        client_secret: str = Field(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9_.=+/-]+$",
                                   description="The app's Primary Client Secret: it also signs every webhook.")
        page_urn: str = Field(max_length=41, pattern=PAGE_URN_PATTERN,
                              description="The Company Page, as urn:li:organization:<digits>.")
        messaging_enabled: bool | None = Field(default=None, strict=True, description=(
            "Whether Page messages may move; leave off until LinkedIn approved the app for them."))

    class MessagingSwitch(BaseModel):
        model_config = ConfigDict(extra="forbid")
        messaging_enabled: bool = Field(strict=True, description=(
            "Switch Page messages on (needs a Page admin's consent first) or off (nothing moves in or out)."))

    Patch = MessagingSwitch

    put_help: ClassVar[dict[str, tuple[str, str]]] = {
        "client_id": ("Client ID", "linkedin.com/developers/apps → your app → Auth → Application credentials: "
                      "Client ID."),
        "client_secret": ("Client secret", "The same Auth tab: Primary Client Secret. It also signs the webhooks "
                          "LinkedIn posts here, so paste it again whenever you rotate it."),
        "page_urn": ("Page URN", "urn:li:organization:<digits>: the digits are in your Page's admin address, "
                     "linkedin.com/company/<digits>/admin/."),
    }
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {
        "linkedin_invalid_client": ("invalid_client_credentials", "client_secret",
                                    "LinkedIn refused this Client ID and secret; copy both from the app's Auth tab"),
    }

    config: Config
    secrets: Secrets

    @classmethod
    def urls(cls, public_url: str, tenant: str) -> dict[str, str]:
        return {"webhook_url": f"{public_url}/v1/linkedin/webhook/{tenant}",
                "oauth_redirect_url": f"{public_url}/v1/linkedin/oauth/callback"}

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        return None if THREAD_RE.match(address) else "a LinkedIn address is a conversation's thread id"

    @property
    def oauth_url(self) -> str:
        """LinkedIn's OAuth host; when IC_LINKEDIN_API_URL points elsewhere (a fake, a proxy), that serves it too."""
        default = OAUTH_URL if self.api_url == API_URL else self.api_url
        return (self.config.oauth_url or default).rstrip("/")

    # -- the approval gate (LI-3) -----------------------------------------------------------------------

    def messaging_problem(self) -> str | None:
        """None when Page messages may move; else why not, in words for the console and the API."""
        if not self.config.page_urn:
            return "no LinkedIn Page is set (page_urn)"
        if not (self.secrets.access_token and self.config.consent_member):
            return "no Page admin has completed LinkedIn's consent yet"
        if not self.config.messaging_enabled:
            return ("LinkedIn messaging is switched off: it needs LinkedIn's approval of the app for Page "
                    "messages, then an admin switches it on")
        return None

    def blocked(self) -> ChannelError | None:
        problem = self.messaging_problem()
        return None if problem is None else ChannelError(problem, code=DISABLED_CODE)

    def settings_problem(self) -> ChannelError | None:
        if self.config.messaging_enabled and not (self.secrets.access_token and self.config.consent_member):
            return ChannelError("messaging can be switched on only after a Page admin has completed LinkedIn's "
                                "consent (Settings → Integrations → LinkedIn → consent link)",
                                code=CONSENT_REQUIRED_CODE)
        return None

    @classmethod
    def carried_over(cls, before: Mapping[str, Any], put: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        """The same app and Page keep the consent and the messaging switch (unless the PUT sets it); another
        app or Page drops the tokens, since the consent was given to the old one."""
        same = all(before.get(name) == put.get(name) for name in ("client_id", "page_urn"))
        if not same:
            return {}, frozenset({"access_token", "refresh_token"})
        kept = {name: before[name] for name in CONSENT_FIELDS if before.get(name)}
        if put.get("messaging_enabled") is None and "messaging_enabled" in before:
            kept["messaging_enabled"] = bool(before["messaging_enabled"])
        return kept, frozenset()

    @classmethod
    def owner_from_setup(cls, setup: Mapping[str, Any]) -> str | None:
        member = setup.get("owner_member")
        if member is None:
            return None
        if not isinstance(member, str) or not MEMBER_URN_RE.match(member):
            raise ValueError("setup.owner_member: a member as urn:li:person:<id>")
        return f"{KIND}:{member}"

    # -- onboarding ------------------------------------------------------------------------------------

    async def setup(self, *, webhook_url: str) -> SetupInfo:
        """Nothing to call: LinkedIn checks no credentials before an admin's consent. The steps say what the
        person does by hand."""
        public = webhook_url.split("/v1/linkedin/webhook/", 1)[0]
        redirect = f"{public}/v1/linkedin/oauth/callback"
        steps = [
            f"In linkedin.com/developers/apps → your app → Auth, add {redirect} to the Authorized redirect URLs.",
            f"In the app's Webhooks tab (shown once LinkedIn approved a webhook use case), add {webhook_url}: "
            "LinkedIn validates it at once, and again about every 2 hours, with a challenge this server answers.",
            "Have an administrator of the Page complete LinkedIn's consent (rw_organization_admin): LinkedIn "
            "gives no app-only token for Pages.",
            "Messaging stays off, and no message moves in or out, until LinkedIn approves the app for Page "
            "messages (there is no self-serve API for them today) and an admin switches messaging on.",
        ]
        if self.secrets.access_token and self.config.consent_member:
            steps[2] = f"A Page admin ({self.config.consent_member}) has completed LinkedIn's consent."
        if not publicly_reachable(webhook_url):
            steps.insert(0, f"LinkedIn cannot reach {webhook_url}: set IC_PUBLIC_URL to this server's public https "
                            "address and connect again.")
        return SetupInfo(mode="webhook", webhook_url=webhook_url, steps=steps,
                         details={"messaging_enabled": self.config.messaging_enabled,
                                  "consent_member": self.config.consent_member})

    # -- the admin's consent (3-legged OAuth, documented) -----------------------------------------------

    def consent_url(self, redirect_uri: str, state: str) -> str:
        """Where a Page admin grants the app ``CONSENT_SCOPES``; LinkedIn sends them back to ``redirect_uri``
        with ``code`` and ``state`` (or ``error``)."""
        query = urlencode({"response_type": "code", "client_id": self.config.client_id,
                           "redirect_uri": redirect_uri, "state": state, "scope": " ".join(CONSENT_SCOPES)},
                          quote_via=quote)
        return f"{self.oauth_url}/oauth/v2/authorization?{query}"

    async def exchange_code(self, code: str, redirect_uri: str) -> dict[str, Any]:
        """The consent's code for tokens: ``access_token``, ``expires_in``, ``access_token_expires_at`` (ISO)
        and, for apps LinkedIn enabled for it, ``refresh_token``. ``SetupError`` codes: linkedin_invalid_client,
        linkedin_grant_refused (an expired or reused code, another redirect URI), linkedin_unreachable,
        linkedin_unavailable, linkedin_token_refused."""
        return await token_request(self.http, f"{self.oauth_url}/oauth/v2/accessToken", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": self.config.client_id, "client_secret": self.secrets.client_secret},
            what="the consent's code")

    async def page_admin(self, access_token: str) -> str:
        """The member whose consent gave ``access_token``, checked to be an APPROVED ADMINISTRATOR of the Page
        (documented: organizationAcls by role assignee). ``SetupError`` when they are not, or LinkedIn refuses."""
        return await page_admin(self.http, self.api_url, access_token, self.config.page_urn,
                                version=self.config.api_version)

    def credentials_due(self, now: datetime) -> bool:
        if not (self.secrets.refresh_token and self.config.access_token_expires_at):
            return False
        try:
            expires_at = datetime.fromisoformat(self.config.access_token_expires_at)
        except ValueError:
            return False
        return expires_at - now <= RENEW_BEFORE

    async def renew_credentials(self, now: datetime) -> Renewed:
        """A new access token (and refresh token) from the refresh token; without one, an admin consents again."""
        if not self.secrets.refresh_token:
            raise SetupError("no refresh token: a Page admin must complete LinkedIn's consent again",
                             code="not_renewable")
        tokens = await token_request(self.http, f"{self.oauth_url}/oauth/v2/accessToken", {
            "grant_type": "refresh_token", "refresh_token": self.secrets.refresh_token,
            "client_id": self.config.client_id, "client_secret": self.secrets.client_secret},
            what="the refresh token")
        secrets = {"access_token": str(tokens["access_token"])}
        if tokens.get("refresh_token"):
            secrets["refresh_token"] = str(tokens["refresh_token"])
        return Renewed(secrets=secrets, details={"access_token_expires_at": tokens.get("access_token_expires_at", "")})

    # -- inbound ---------------------------------------------------------------------------------------

    def verify(self, raw: RawRequest) -> Verdict:
        return verify_request(self.secrets.client_secret, raw)

    def parse(self, raw: RawRequest) -> list[Inbound]:
        message = parse_body(load_json(raw), raw.headers, page_urn=self.config.page_urn)
        if message is None:
            return []
        problem = self.messaging_problem()
        if problem is not None:  # LI-3: acknowledged (LinkedIn blocks failing endpoints), never stored
            log.info("linkedin: message %s in %s not taken in: %s", message.dedupe_key, message.address, problem)
            return []
        return [message]

    # -- outbound --------------------------------------------------------------------------------------

    def chips_as_text(self, chips: Sequence[str]) -> str:
        return "\n".join(f"- {label}" for label in chips)  # CHIP-4: a short bulleted list

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        return {"text": text}  # the address is the conversation: no threads within it

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        problem = self.messaging_problem()
        if problem is not None:  # LI-3: refused before LinkedIn is asked
            return SendResult.failed(DISABLED_CODE, problem, retryable=False)
        # ASSUMED request shape (see the module docstring). A smith the catch-all minted writes first to its
        # member (the address is then their urn): the Page's conversation with that member.
        to = {"recipient": address} if MEMBER_URN_RE.match(address) else {"thread": address}
        message = {"organization": self.config.page_urn, **to, "text": str(payload.get("text") or "")}
        try:
            response = await self.http.post(f"{self.api_url}{MESSAGES_PATH}", json=message, headers=self._headers())
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        if response.status_code not in (200, 201):
            return send_failure(response)
        message_id = response.headers.get("x-restli-id")  # Rest.li's id of a created entity
        if not message_id:
            try:
                body = response.json()
                message_id = str(body.get("id") or "") if isinstance(body, dict) else ""
            except ValueError:
                message_id = ""
        return SendResult.sent(message_id or None)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets.access_token}", "LinkedIn-Version": self.config.api_version,
                "X-Restli-Protocol-Version": RESTLI_PROTOCOL}
