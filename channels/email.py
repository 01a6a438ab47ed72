"""Email on the customer's own Cloudflare (EM-1..EM-3, reference/email.md).

In: Cloudflare Email Routing hands each message for an inbox to our Email Worker (channels/email_worker.js,
uploaded at connect time with a per-tenant secret), which posts the raw message, signed
(channels/email_signature.py). Out: Cloudflare's Email Service REST API, from the inbox's address with
its display name, threaded on the message answered (In-Reply-To, References, "Re: …").

A conversation is an inbox and a correspondent: the address is the inbox (``pa@acme.example``, what a
smith deployment binds) and the thread is the correspondent's address, so each person has a history of
their own with the smith. The sender is the lower-cased From address, ``verified`` only when Cloudflare's
topmost Authentication-Results says DMARC passed for the From domain (ID-3).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from app.settings import get_settings
from channels.apps import AppFactory, AppSpec, MintedApp
from channels.base import Channel
from channels.email_cloudflare import Cloudflare, CloudflareError, worker_name
from channels.email_mime import ParsedMail, parse_mail
from channels.email_signature import FROM_HEADER, TO_HEADER, problem
from channels.errors import MalformedPayload, SetupError
from channels.payloads import publicly_reachable
from channels.types import Capabilities, Inbound, InboundMessage, Outbound, RawRequest, SendResult, SetupInfo, Verdict

log = logging.getLogger("channels.email")

HANDLE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s<>]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
DOMAIN_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
MAX_TEXT = 100_000
MAX_SUBJECT = 250
RETRYABLE_CODES = frozenset({10002, 10004, 10100})  # internal error, throttled, unavailable
AUTH_CODES = frozenset({10101, 10103, 10000})
NOT_ENTITLED = frozenset({10102, 10105, 10203})  # sending not enabled for the account or domain


class EmailChannel(AppFactory, Channel):
    kind: ClassVar[str] = "email"
    api_url_setting: ClassVar[str] = "cloudflare_api_url"
    display_name: ClassVar[str] = "Email"
    capabilities: ClassVar[Capabilities] = Capabilities(max_chips=0, max_chip_label=75, max_text=MAX_TEXT,
                                                        native_approvals=False)
    send_tool: ClassVar[str] = "email_send"
    setup_keys: ClassVar[frozenset[str]] = frozenset({"mode", "handle", "display_name", "owner_email"})
    catch_all_at_provider: ClassVar[bool] = True  # EM-4: the domain's catch-all rule
    setup_modes: ClassVar[frozenset[str]] = frozenset({"provision"})
    sends_per_second: ClassVar[float] = 2.0
    send_burst: ClassVar[int] = 5
    send_tool_description: ClassVar[str] = (
        "Send an email from this smith's inbox to someone (a new message; replies to a person's email go "
        "back to them on their own).")
    send_tool_parameters: ClassVar[dict[str, Any] | None] = {
        "type": "object", "properties": {
            "to": {"type": "string", "description": "The recipient's email address."},
            "subject": {"type": "string", "description": "The subject line."},
            "body": {"type": "string", "description": "The message, as plain text."}},
        "required": ["to", "subject", "body"]}
    # AppFactory: an inbox is an "app" minted for one smith: a routing rule handle@domain → the Worker.
    app_noun: ClassVar[str] = "email inbox"
    app_cap_code: ClassVar[str] = "email_inbox_cap_reached"
    app_cap_setting: ClassVar[str] = "email_inbox_cap"
    max_display_name: ClassVar[int] = 100

    class Config(Channel.Config):
        account_id: str = ""
        domain: str = ""
        zone_id: str = ""
        worker_name: str = ""
        authserv_id: str = "mx.cloudflare.net"

    class Secrets(Channel.Secrets):
        api_token: str = Field(min_length=1, max_length=400)
        webhook_secret: str = Field(default="", max_length=200)  # generated: the Worker signs with it

    class Put(Channel.Put):
        account_id: str = Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")
        api_token: str = Field(min_length=20, max_length=400, pattern=r"^[A-Za-z0-9_-]+$")
        domain: str = Field(min_length=3, max_length=253, pattern=DOMAIN_PATTERN)
        authserv_id: str | None = Field(default=None, max_length=253, pattern=DOMAIN_PATTERN)

    put_help: ClassVar[dict[str, tuple[str, str]]] = {
        "account_id": ("Account ID", "Cloudflare dashboard → your domain → Overview, right column (32 characters)."),
        "api_token": ("API token", "My Profile → API Tokens → Create Token, with Zone → Zone → Read, Zone → Email "
                      "Routing Rules → Edit, Account → Workers Scripts → Edit and Account → Email Sending → Edit."),
        "domain": ("Domain", "The domain on Cloudflare whose addresses become inboxes, e.g. acme.example."),
        "authserv_id": ("Authentication-Results id (optional)", "Whose verdict on DMARC to trust; "
                        "mx.cloudflare.net unless you know better."),
    }
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {
        "invalid_api_token": ("invalid_api_token", "api_token", "Cloudflare rejected this API token"),
        "cloudflare_zone_not_found": ("cloudflare_zone_not_found", "domain",
                                      "This domain is not a zone of this Cloudflare account"),
    }

    config: Config
    secrets: Secrets

    def __init__(self, config: Any, secrets: Any, *, api_url: str, http: Any = None) -> None:
        super().__init__(config, secrets, api_url=api_url, http=http)
        self.inboxes: dict[str, dict[str, Any]] = {}  # address -> its row (display name, rule id)

    @classmethod
    def urls(cls, public_url: str, tenant: str) -> dict[str, str]:
        return {"webhook_url": f"{public_url}/v1/email/webhook/{tenant}"}

    @classmethod
    def generated_secrets(cls) -> dict[str, str]:
        return {"webhook_secret": secrets.token_urlsafe(32)}

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        return None if EMAIL_RE.match(address) else "an email inbox is an address, e.g. pa@acme.example"

    @property
    def cloudflare(self) -> Cloudflare:
        return Cloudflare(self.http, self.api_url, self.config.account_id, self.secrets.api_token)

    # -- connecting (EM-1) --------------------------------------------------------------------------

    async def setup(self, *, webhook_url: str) -> SetupInfo:
        cloudflare, domain = self.cloudflare, self.config.domain.lower()
        await cloudflare.verify_token()
        zone = await cloudflare.zone_of(domain)
        routing = await cloudflare.routing(str(zone["id"]))
        if not routing.get("enabled"):
            raise SetupError(f"Email Routing is off for {domain}: in Cloudflare open {domain} → Email → Email "
                             "Routing and enable it (it adds the MX and SPF records), then connect again",
                             code="email_routing_disabled")
        name = worker_name(self._tenant_of(webhook_url))
        await cloudflare.upload_worker(name, {
            "IC_WEBHOOK_URL": ("plain_text", webhook_url), "IC_SECRET": ("secret_text", self.secrets.webhook_secret),
            "IC_MAX_BYTES": ("plain_text", str(self.max_email_bytes()))})
        steps = [f"Mail for the inboxes you create on {domain} goes through the Email Worker {name} to this server.",
                 "Create an inbox from a smith's Deployments tab (Create email inbox)."]
        if not publicly_reachable(webhook_url):
            steps.insert(0, f"Cloudflare's Worker cannot reach {webhook_url}: set IC_PUBLIC_URL to this server's "
                            "public https address and connect again.")
        return SetupInfo(mode="webhook", webhook_url=webhook_url, steps=steps, details={
            "zone_id": str(zone["id"]), "worker_name": name, "routing_status": str(routing.get("status") or ""),
            "routing_enabled": True})

    @staticmethod
    def _tenant_of(webhook_url: str) -> str:
        return webhook_url.rstrip("/").rsplit("/", 1)[-1]

    @staticmethod
    def max_email_bytes() -> int:
        return get_settings().max_email_bytes  # IC_MAX_EMAIL_BYTES: the server's limit, told to the Worker

    # -- inbound -----------------------------------------------------------------------------------

    def verify(self, raw: RawRequest) -> Verdict:
        why = problem(self.secrets.webhook_secret, raw.headers, raw.body, self.clock())
        return Verdict.reject(why) if why else Verdict.accept()

    def parse(self, raw: RawRequest) -> list[Inbound]:
        inbox = (raw.header(TO_HEADER) or "").strip().lower()
        if not EMAIL_RE.match(inbox):
            raise MalformedPayload("the envelope recipient is not an address")
        mail = parse_mail(raw.body, authserv_id=self.config.authserv_id)
        if mail.automated:  # auto-replies, bounces, bulk and list mail never wake a smith: no mail loops
            log.info("email: %s mail from %s to %s not answered", mail.automated, mail.from_address or "?", inbox)
            return []
        sender = mail.from_address or (raw.header(FROM_HEADER) or "").strip().lower()
        if not EMAIL_RE.match(sender):
            raise MalformedPayload("the message names no sender address that could be answered")
        if sender in self.inboxes:  # one of our own inboxes writing: answering it would loop
            log.info("email: mail from our own inbox %s to %s not answered", sender, inbox)
            return []
        if mail.problems:
            log.info("email: message %s read with problems: %s", mail.message_id, "; ".join(mail.problems))
        dedupe = mail.message_id or f"sha256:{hashlib.sha256(raw.body).hexdigest()}"
        return [InboundMessage(
            dedupe_key=f"mid:{dedupe}"[:300], address=inbox, thread=sender, sender_id=f"email:{sender}",
            sender_display=mail.from_name or sender, text=_for_the_model(mail), start_payload=None, is_direct=True,
            provider_message_id=mail.message_id, verified=mail.dmarc_pass, reply_context=_threading(mail))]

    # -- outbound (EM-3) -------------------------------------------------------------------------------

    def render(self, outbound: Outbound) -> list[dict[str, Any]]:
        payloads = super().render(outbound)
        if len(payloads) > 1 and sum(len(p["text"]) for p in payloads) < MAX_TEXT:  # one email, not several
            payloads = [{**payloads[0], "text": "\n\n".join(p["text"] for p in payloads)}]
        context = outbound.reply_context or {}
        subject = str(context.get("subject") or "")
        if context.get("message_id"):
            subject = subject if subject.lower().startswith("re:") else f"Re: {subject}".rstrip()
        headers: dict[str, str] = {}
        if context.get("message_id"):
            references = " ".join(filter(None, [str(context.get("references") or ""), str(context["message_id"])]))
            headers = {"In-Reply-To": str(context["message_id"]), "References": references[-8000:]}
        for payload in payloads:
            if subject:
                payload["subject"] = subject[:MAX_SUBJECT]
            if headers:
                payload["headers"] = headers
        return payloads

    def chips_as_text(self, chips: Sequence[str]) -> str:
        return "\n".join(f"- {label}" for label in chips)  # CHIP-4: a short bulleted list

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        return {"to": thread, "text": text} if thread else {"text": text}  # no correspondent: the owner

    def outbound_from_tool(self, arguments: Mapping[str, Any]) -> Outbound:
        to = str(arguments.get("to") or "").strip().lower()
        subject, body = str(arguments.get("subject") or "").strip(), str(arguments.get("body") or "").strip()
        if not EMAIL_RE.match(to):
            raise ValueError("to must be one email address")
        if not subject or not body:
            raise ValueError("subject and body are required")
        return Outbound(text=body, thread=to, reply_context={"subject": subject[:MAX_SUBJECT]})

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        inbox = self.inboxes.get(address.lower(), {})
        # No correspondent (a schedule's run writes to the smith's inbox): the inbox's owner (ID-5).
        to = str(payload.get("to") or (inbox.get("settings") or {}).get("owner_email") or "")
        if not to:
            return SendResult.failed("bad_request", f"email: nobody to write to from {address} (no correspondent "
                                     "and no owner_email)", retryable=False)
        sender: dict[str, str] = {"address": address}
        if inbox.get("name"):
            sender["name"] = str(inbox["name"])
        subject = payload.get("subject") or f"A message from {inbox.get('name') or address}"
        message: dict[str, Any] = {"to": to, "from": sender, "subject": subject,
                                   "text": payload.get("text") or "",
                                   # RFC 3834: an agent's mail is automatic, so auto-responders do not answer it
                                   "headers": {"Auto-Submitted": "auto-replied" if payload.get("headers")
                                               else "auto-generated", **(payload.get("headers") or {})}}
        try:
            result = await self.cloudflare.send(message)
        except CloudflareError as exc:
            return _classify(exc)
        except SetupError as exc:  # not reachable
            return SendResult.failed("network", str(exc), retryable=True)
        if to in (result.get("permanent_bounces") or []):
            return SendResult.failed("blocked", f"email: {to} bounced permanently", retryable=False)
        # The REST API names no Message-ID (Cloudflare sets it); the delivery gets an id of ours.
        return SendResult.sent(str(result.get("message_id") or f"cf-{uuid.uuid4().hex}"))

    # -- inboxes (EM-2): AppFactory ------------------------------------------------------------------------

    @classmethod
    def app_request(cls, setup: Mapping[str, Any], metadata: Mapping[str, Any], *,
                    smith_name: str) -> tuple[str, dict[str, Any]]:
        handle = str(setup.get("handle") or "").strip().lower()
        if not HANDLE_RE.match(handle):
            raise ValueError("setup.handle: the part before the @: letters, digits, dots, dashes, _ and +")
        value = setup.get("display_name")
        name = (value.strip() if isinstance(value, str) else "") or smith_name.strip()
        if not 1 <= len(name) <= cls.max_display_name:
            raise ValueError(f"setup.display_name: 1 to {cls.max_display_name} characters")
        owner = setup.get("owner_email")
        settings: dict[str, Any] = {"handle": handle}
        if owner is not None:
            owner_email = str(owner).strip().lower()
            if not EMAIL_RE.match(owner_email):
                raise ValueError("setup.owner_email: an email address")
            settings["owner_email"] = owner_email
        return name, settings

    def factory_ready(self) -> str | None:
        if not (self.config.zone_id and self.config.worker_name):
            return "connect email first (Settings → Integrations → Email)"
        return None

    async def mint_app(self, spec: AppSpec, *, public_url: str, tenant: str) -> MintedApp:
        address = f"{spec.settings['handle']}@{self.config.domain.lower()}"
        rule_id = await self.cloudflare.add_rule(self.config.zone_id, address, self.config.worker_name)
        owner = spec.settings.get("owner_email")
        return MintedApp(external_id=rule_id, public={"address": address, "rule_id": rule_id}, secrets={},
                         address=address, owner_identity=f"email:{owner}" if owner else None, owner_email=owner)

    async def update_app(self, external_id: str, spec: AppSpec, *, public_url: str, tenant: str) -> None:
        return None  # REN-1: the display name is the From name we send with; Cloudflare holds nothing of it

    async def delete_app(self, external_id: str) -> None:
        await self.cloudflare.delete_rule(self.config.zone_id, external_id)

    async def catch_all_changed(self, active: bool) -> None:
        await self.cloudflare.set_catch_all(self.config.zone_id, self.config.worker_name, active)

    def attach_apps(self, apps: Mapping[str, Mapping[str, Any]]) -> None:
        self.inboxes = {str(row["address"]).lower(): dict(row) for row in apps.values() if row.get("address")}


def _for_the_model(mail: ParsedMail) -> str:
    """What the smith reads: the new text, then the subject and which attachments it cannot see (the text
    first: a person's first words are what they ask, and the built-in model reads its commands there)."""
    parts = [mail.text or mail.full_text, f"[Subject: {mail.subject}]" if mail.subject else ""]
    if mail.attachments:
        listed = ", ".join(f"{a.filename or 'unnamed'} ({a.content_type}, {max(1, a.size // 1024)} KB)"
                           for a in mail.attachments[:20])
        parts.append(f"[Attached, not shown to you: {listed}]")
    return "\n\n".join(p for p in parts if p).strip() or "(an empty email)"


def _threading(mail: ParsedMail) -> dict[str, str]:
    context = {"subject": mail.subject[:MAX_SUBJECT]}
    if mail.message_id:
        context["message_id"] = mail.message_id
        context["references"] = " ".join(mail.references)[-8000:]
    return context


def _classify(exc: CloudflareError) -> SendResult:
    reason = f"cloudflare: {exc.message} (code {exc.code})"
    if exc.status == 429 or exc.code == 10004:
        return SendResult.failed("rate_limited", reason, retryable=True, retry_after=exc.retry_after)
    if exc.status >= 500 or exc.code in RETRYABLE_CODES:
        return SendResult.failed("server_error", reason, retryable=True)
    if exc.code in AUTH_CODES or exc.status == 401:
        return SendResult.failed("unauthorized", reason, retryable=False)
    if exc.code in NOT_ENTITLED or exc.status == 403:
        return SendResult.failed("sending_disabled", reason, retryable=False)
    return SendResult.failed("bad_request", reason, retryable=False)
