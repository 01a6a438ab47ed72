"""WhatsApp Cloud API channel over plain httpx (reference/whatsapp.md).

Calls go to ``{api_url}/{phone_number_id}/...`` with the access token as a bearer (``api_url`` is
``IC_GRAPH_API_URL``, Graph with its version). Meta calls one URL: ``GET`` for the verification
handshake (``hub.verify_token``) and ``POST`` for events signed with the app secret
(``X-Hub-Signature-256``). A conversation's address is the person's ``wa_id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets as pysecrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field

from channels.base import Channel
from channels.errors import SetupError
from channels.payloads import load_json, publicly_reachable, split_text
from channels.types import (
    ApprovalPrompt,
    Capabilities,
    Inbound,
    InboundAction,
    InboundMessage,
    Outbound,
    RawRequest,
    SendResult,
    SetupInfo,
    TapAnswer,
    Verdict,
)
from channels.whatsapp_graph import WINDOW_CLOSED_CODE, send_failure, setup_failure, transport_failure
from channels.whatsapp_inbound import CHIP_PREFIX, CODE_RE, GREETING, parse_body

log = logging.getLogger("channels.whatsapp")

# Provider limits (reference/whatsapp.md, "Sending").
MAX_TEXT = 4096
MAX_BUTTON_BODY = 1024  # an interactive message's body text
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
SIGNATURE_HEADER = "x-hub-signature-256"
MAX_CHALLENGE = 256
MAX_MARKING = 64  # read receipts in flight at once
PHONE_FIELDS = "display_phone_number,verified_name,quality_rating"
WA_ID_RE = re.compile(r"^[1-9][0-9]{5,19}$")  # international format, digits only
APPROVE_LABEL, REJECT_LABEL, EDIT_LABEL = "Approve", "Reject", "Edit"


class WhatsAppChannel(Channel):
    kind: ClassVar[str] = "whatsapp"
    api_url_setting: ClassVar[str] = "graph_api_url"
    display_name: ClassVar[str] = "WhatsApp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_chips=MAX_BUTTONS, max_chip_label=MAX_BUTTON_TITLE, max_text=MAX_TEXT, native_approvals=True)
    send_tool: ClassVar[str] = "whatsapp_send_message"
    setup_modes: ClassVar[frozenset[str]] = frozenset({"start_token"})
    # WA-4: free-form messages only within 24 hours of the person's last message (templates aside).
    reply_window: ClassVar[timedelta | None] = timedelta(hours=24)

    class Config(Channel.Config):
        phone_number_id: str = Field(default="", pattern=r"^[0-9]{0,30}$")
        display_phone_number: str = ""  # learnt at setup: the wa.me links' number, and our own echoes

    class Secrets(Channel.Secrets):
        access_token: str = Field(min_length=1, max_length=2000)
        app_secret: str = Field(min_length=1, max_length=200)
        verify_token: str = Field(default="", max_length=200)  # generated: Meta's webhook handshake

    class Put(Channel.Put):
        phone_number_id: str = Field(min_length=5, max_length=30, pattern=r"^[0-9]+$",
                                     description="The sending number's id in the Cloud API (not the number).")
        access_token: str = Field(min_length=20, max_length=2000, pattern=r"^[A-Za-z0-9_.|-]+$",
                                  description="A System User access token with whatsapp_business_messaging.")
        app_secret: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9]+$",
                                description="The Meta app's secret: it signs every webhook.")

    put_help: ClassVar[dict[str, tuple[str, str]]] = {
        "phone_number_id": ("Phone number ID", "developers.facebook.com/apps → your app → WhatsApp → API Setup: "
                            "the Phone number ID under the sending number (an id, not the number itself)."),
        "access_token": ("Access token", "business.facebook.com → Settings → Users → System users → Generate new "
                         "token for the app, with whatsapp_business_messaging and whatsapp_business_management. "
                         "(The temporary token on API Setup expires within a day.)"),
        "app_secret": ("App secret", "Your app → App settings → Basic → App secret (Show)."),
    }
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {
        "invalid_token": ("invalid_access_token", "access_token",
                          "Meta rejected this access token (invalid or expired); generate a System User token"),
        "token_lacks_permission": ("access_token_lacks_permission", "access_token",
                                   "This access token may not use the number; give it whatsapp_business_messaging "
                                   "and whatsapp_business_management on this WhatsApp account"),
        "unknown_phone_number": ("invalid_phone_number_id", "phone_number_id",
                                 "No phone number with this id for this token; copy the Phone number ID from "
                                 "WhatsApp → API Setup"),
    }

    config: Config
    secrets: Secrets

    def __init__(self, config: Any, secrets: Any, *, api_url: str, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(config, secrets, api_url=api_url, http=http)
        self._marking: set[asyncio.Task[None]] = set()  # read receipts being sent (learn)

    @classmethod
    def generated_secrets(cls) -> dict[str, str]:
        return {"verify_token": pysecrets.token_urlsafe(24)}

    # -- binding -----------------------------------------------------------------------------------

    @classmethod
    def start_link(cls, public: Mapping[str, Any], token: str) -> str | None:
        """WA-2: ``https://wa.me/<digits>?text=<greeting with the code>``; the person sends it as is."""
        digits = business_number(str(public.get("display_phone_number") or ""))
        if not digits:
            return None
        if not CODE_RE.match(token):
            raise ValueError("a connect code must be 22-64 characters of A-Z a-z 0-9 _ -")
        return f"https://wa.me/{digits}?text={quote(GREETING.format(code=token), safe='')}"

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        if WA_ID_RE.match(address):
            return None
        return "a WhatsApp address is the person's number in international format, digits only (e.g. 306912345678)"

    @classmethod
    def owner_of_address(cls, address: str) -> str | None:
        return f"whatsapp:{address}" if WA_ID_RE.match(address) else None  # a chat with one person is theirs

    # -- inbound -----------------------------------------------------------------------------------

    def verify(self, raw: RawRequest) -> Verdict:
        if raw.method == "GET":
            return self._handshake(raw)
        if raw.method != "POST":
            return Verdict.reject(f"method {raw.method} not used by Meta")
        secret, got = self.secrets.app_secret, raw.header(SIGNATURE_HEADER)
        if not got:
            return Verdict.reject("missing X-Hub-Signature-256")
        expected = "sha256=" + hmac.new(secret.encode(), raw.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(got.encode(), expected.encode()):  # over the raw bytes, constant time
            return Verdict.reject("signature mismatch")
        return Verdict.accept()

    def _handshake(self, raw: RawRequest) -> Verdict:
        """Meta's GET when the callback URL is saved: echo ``hub.challenge`` if the verify token matches."""
        expected = self.secrets.verify_token
        got, challenge = raw.query.get("hub.verify_token"), raw.query.get("hub.challenge")
        if raw.query.get("hub.mode") != "subscribe" or not expected or got is None:
            return Verdict.reject("not a subscription handshake")
        if not hmac.compare_digest(got.encode(), expected.encode()):
            return Verdict.reject("verify token mismatch")
        if not challenge or len(challenge) > MAX_CHALLENGE:
            return Verdict.reject("missing or oversized hub.challenge")
        return Verdict.challenge(challenge)

    def parse(self, raw: RawRequest) -> list[Inbound]:
        return parse_body(load_json(raw), phone_number_id=self.config.phone_number_id,
                          business_number=business_number(self.config.display_phone_number))

    # -- render ------------------------------------------------------------------------------------

    def measure(self, text: str) -> int:
        return len(text.encode("utf-16-le")) // 2  # the stricter count, whichever Meta uses

    def render(self, outbound: Outbound) -> list[dict[str, Any]]:
        return self._fit_button_bodies(super().render(outbound))

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        return {"type": "text", "text": {"body": text, "preview_url": False}}  # no threads on WhatsApp

    def with_chips(self, payload: dict[str, Any], chips: Sequence[str]) -> dict[str, Any]:
        # CHIP-3: reply buttons; a tap comes back as a button_reply that reads like the label typed.
        return _buttons(_body(payload), [(f"{CHIP_PREFIX}{n}", label) for n, label in enumerate(chips)])

    def approval_fits(self, approval: ApprovalPrompt) -> bool:
        tokens = [approval.approve_token, approval.reject_token, approval.edit_token]
        given = [tok for tok in tokens if tok is not None]
        return len(set(given)) == len(given) and all(
            0 < len(tok) <= MAX_BUTTON_ID and tok == tok.strip() and not tok.startswith(CHIP_PREFIX) for tok in given)

    def with_approval(self, payload: dict[str, Any], approval: ApprovalPrompt) -> dict[str, Any]:
        # APR-3: Approve / Reject (/ Edit) reply buttons whose ids are the opaque tokens.
        buttons = [(approval.approve_token, APPROVE_LABEL), (approval.reject_token, REJECT_LABEL)]
        if approval.edit_token is not None:
            buttons.append((approval.edit_token, EDIT_LABEL))
        return _buttons(_body(payload), buttons)

    def _fit_button_bodies(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """An interactive message's body takes 1024 characters, a text message 4096: a longer body keeps
        its last part with the buttons and goes ahead of it as text messages."""
        fitted: list[dict[str, Any]] = []
        for payload in payloads:
            body = _body(payload)
            if payload["type"] != "interactive" or self.measure(body) <= MAX_BUTTON_BODY:
                fitted.append(payload)
                continue
            tail = split_text(body, MAX_BUTTON_BODY, self.measure)[-1]  # an exact suffix of body
            head = body[: len(body) - len(tail)].rstrip()
            fitted.extend(self.text_payload(chunk, None) for chunk in self._chunks(head))
            fitted.append({**payload, "interactive": {**payload["interactive"], "body": {"text": tail}}})
        return fitted

    # -- send --------------------------------------------------------------------------------------

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        message = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": address, **payload}
        try:
            response = await self.http.post(f"{self.api_url}/{self.config.phone_number_id}/messages",
                                            json=message, headers=self._auth())
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        if response.status_code != 200:
            return send_failure(response)
        try:
            wamid = response.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            wamid = None  # accepted all the same: Graph answered 200
        return SendResult.sent(str(wamid) if wamid else None)

    def window_closed(self, last_inbound_at: datetime | None) -> SendResult:
        """WA-4 (compass B7): refused before Graph is asked, which would answer 131047 all the same."""
        since = ("has not written to this number yet" if last_inbound_at is None
                 else f"last wrote at {last_inbound_at:%Y-%m-%d %H:%M} UTC, more than 24 hours ago")
        return SendResult.failed(WINDOW_CLOSED_CODE, f"the person {since}; WhatsApp delivers free-form "
                                 "messages only within 24 hours of the person's last message, so they must "
                                 "write first", retryable=False)

    async def edit_approval(self, address: str, provider_message_id: str, outcome_text: str) -> SendResult:
        """WhatsApp cannot edit a message: the outcome is a reply quoting the prompt (its buttons stay, and
        a late tap is answered "Already decided")."""
        return await self.send(address, {**self.text_payload(outcome_text, None),
                                         "context": {"message_id": provider_message_id}})

    async def acknowledge_action(self, action: InboundAction, answer: TapAnswer) -> None:
        """No toasts on WhatsApp: a refused tap is answered with a message quoting it; an accepted one shows
        through the prompt's outcome (``edit_approval``)."""
        if not answer.refused or not answer.text:
            return
        payload: dict[str, Any] = self.text_payload(answer.text, None)
        if action.action_id:
            payload["context"] = {"message_id": action.action_id}
        result = await self.send(action.address, payload)
        if not result.ok:
            log.warning("whatsapp: answering a tap failed: %s", result.error)

    # -- read receipts -----------------------------------------------------------------------------

    def learn(self, items: Sequence[Inbound]) -> None:
        """Issue 16 §5: a person's messages show as read once they are stored (blue ticks), marked in the
        background so the webhook's answer never waits on Graph."""
        newest: dict[str, str] = {}  # marking a person's newest message shows the earlier ones read too
        for item in items:
            if isinstance(item, InboundMessage) and item.provider_message_id:
                newest[item.address] = item.provider_message_id
        for wamid in newest.values():
            if len(self._marking) >= MAX_MARKING:
                break
            task = asyncio.create_task(self._mark_read(wamid))
            self._marking.add(task)
            task.add_done_callback(self._marking.discard)

    async def _mark_read(self, wamid: str) -> None:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        try:
            response = await self.http.post(f"{self.api_url}/{self.config.phone_number_id}/messages", json=body,
                                            headers=self._auth())
            if response.status_code != 200:
                log.info("whatsapp: marking %s read failed: HTTP %s", wamid, response.status_code)
        except httpx.HTTPError as exc:  # a courtesy: the message was stored already
            log.info("whatsapp: marking %s read failed: %s", wamid, type(exc).__name__)

    async def aclose(self) -> None:
        for task in list(self._marking):
            task.cancel()
        await asyncio.gather(*self._marking, return_exceptions=True)
        await super().aclose()

    # -- onboarding --------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets.access_token}"}

    async def phone_number(self) -> dict[str, Any]:
        """WA-1: the number behind ``phone_number_id``, read with the token (which validates both)."""
        try:
            response = await self.http.get(f"{self.api_url}/{self.config.phone_number_id}",
                                           params={"fields": PHONE_FIELDS}, headers=self._auth())
        except httpx.HTTPError as exc:
            raise SetupError(f"Meta's Graph API could not be reached: {type(exc).__name__}",
                             code="provider_unreachable") from exc
        if response.status_code != 200:
            raise setup_failure(response)
        try:
            found = response.json()
        except ValueError as exc:
            raise SetupError("Graph answered the phone number lookup with something other than JSON",
                             code="setup_failed") from exc
        return found if isinstance(found, dict) else {}

    async def setup(self, *, webhook_url: str) -> SetupInfo:
        """Validate the number and token with Graph; the webhook itself is set in Meta's dashboard (no API
        for it with a System User token), so the steps say exactly what to paste where."""
        number = await self.phone_number()
        verify_token = self.secrets.verify_token
        if not verify_token:
            raise SetupError("a verify token is required", code="missing_secret")
        # Deliberately shown: the verify token is a secret shared with Meta, but only the admin can give it
        # to Meta (App Dashboard), so it is in the steps and the public details, unlike the access token and
        # the app secret. It merely answers the GET handshake; every event is signed with the app secret.
        details = {"display_phone_number": str(number.get("display_phone_number") or ""),
                   "verified_name": str(number.get("verified_name") or ""),
                   "quality_rating": str(number.get("quality_rating") or ""), "verify_token": verify_token}
        steps = [
            "In Meta's App Dashboard (developers.facebook.com/apps) open your app → WhatsApp → Configuration.",
            f"Under Webhook click Edit, paste the Callback URL {webhook_url} and the Verify token {verify_token}, "
            "then click Verify and save.",
            "Under Webhook fields click Manage and subscribe to messages.",
            "Then create a WhatsApp link on a smith's Deployments tab: the person's first message binds their number.",
        ]
        if not publicly_reachable(webhook_url):
            steps.insert(0, f"Meta calls only public HTTPS URLs, and {webhook_url} is not one: set IC_PUBLIC_URL "
                            "to this server's public address first.")
        return SetupInfo(mode="webhook", webhook_url=webhook_url, details=details, steps=steps)


def business_number(display_phone_number: str) -> str:
    """``+1 555-010-0199`` -> ``15550100199``: the number as wa.me links and webhooks write it."""
    return re.sub(r"\D", "", display_phone_number).lstrip("0")


def _body(payload: dict[str, Any]) -> str:
    if payload.get("type") == "interactive":
        return str(payload["interactive"]["body"]["text"])
    return str(payload["text"]["body"])


def _buttons(body: str, buttons: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": button_id, "title": title}}
                               for button_id, title in buttons]}}}
