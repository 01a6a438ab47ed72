"""The one interface every provider implements (DESIGN §4).

A channel instance wraps one integration: its public ``Config``, its decrypted ``Secrets`` and the
provider's base URL. It is pure provider code: it never touches the database or services.

Render contract: ``render`` returns one payload per provider message, in send order. When the
outbound carries an approval, the LAST payload is the approval prompt; the message id its send
returns is what ``edit_approval`` needs later.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from channels.errors import ChannelError, SetupError
from channels.payloads import split_text
from channels.types import (
    ApprovalPrompt,
    Capabilities,
    Inbound,
    InboundAction,
    Outbound,
    RawRequest,
    Renewed,
    SendResult,
    SetupInfo,
    TapAnswer,
    ToolSpec,
    Verdict,
)

APPROVAL_TEXT_PROMPT = "Reply YES to approve or NO to reject."
Deliver = Callable[[list[Inbound]], Awaitable[object]]  # stores pulled items (app.services.inbound.handle)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channel(ABC):
    kind: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # What the product needs to know of a kind, declared here so that adding a channel is a module and
    # a registry entry: the send tool its bound smiths get (DEP-6), and the keys of a deployment's
    # ``setup`` it understands (any other key is refused).
    send_tool: ClassVar[str]
    setup_keys: ClassVar[frozenset[str]] = frozenset({"mode"})
    setup_modes: ClassVar[frozenset[str]] = frozenset()  # e.g. start_token: a one-time link (start_link)
    # True when each installation (a Slack workspace) brings its own tokens: the hub attaches them.
    per_installation: ClassVar[bool] = False
    # Pacing the provider asks for, per conversation (0: none): the outbox spaces sends to this rate,
    # allowing ``send_burst`` at once.
    sends_per_second: ClassVar[float] = 0.0
    send_burst: ClassVar[int] = 1
    # The body and content type of the 200 that acknowledges a verified request.
    ack_body: ClassVar[tuple[str, str]] = ('{"ok":true}', "application/json")
    # How long after a person's last message the channel may still write to them freely (WhatsApp's
    # 24 hours, WA-4); None: no such limit. With one, the outbox checks it before every send.
    reply_window: ClassVar[timedelta | None] = None
    # The ``Settings`` field holding the provider's base URL (a proxy, or a fake provider in tests).
    api_url_setting: ClassVar[str] = ""
    # True when ``blocked`` may ever refuse (LinkedIn's gate): only then is the channel built to ask it.
    can_block: ClassVar[bool] = False

    class Config(_Model):
        """The integration's public fields (shown in the console and the API)."""

    class Secrets(_Model):
        """The integration's secret fields (stored encrypted, never shown back)."""

    class Put(_Model):
        """The body of ``PUT /v1/tenant/{kind}``: fields named like ``Secrets`` fields are stored
        encrypted, the others are public (``Config``)."""

    # ``PATCH /v1/tenant/{kind}``'s body: public settings changed on their own, without the secrets
    # (LinkedIn's messaging switch); None: the kind has no such route.
    Patch: ClassVar[type[BaseModel] | None] = None

    # What the console's form says about each field of ``Put`` (label, help), in form order.
    put_help: ClassVar[dict[str, tuple[str, str]]] = {}
    # SetupError codes that blame one field of ``Put``: code -> (stable error code, field, message).
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {}

    def __init__(self, config: BaseModel | Mapping[str, Any], secrets: BaseModel | Mapping[str, Any], *,
                 api_url: str, http: httpx.AsyncClient | None = None) -> None:
        self.config = self._coerce(type(self).Config, config)
        self.secrets = self._coerce(type(self).Secrets, secrets)
        self.api_url = api_url.rstrip("/")
        self._http = http
        self._owns_http = http is None
        # Timestamp windows read this clock, so tests can move time.
        self.clock: Callable[[], float] = time.time

    @staticmethod
    def _coerce(model: type[BaseModel], value: BaseModel | Mapping[str, Any]) -> Any:
        if isinstance(value, model):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        return model.model_validate(value)

    @classmethod
    def urls(cls, public_url: str, tenant: str) -> dict[str, str]:
        """The URLs of this server the provider must be given (shown with copy buttons, also before
        the integration is set up)."""
        return {"webhook_url": f"{public_url}/v1/{cls.kind}/webhook/{tenant}"}

    @classmethod
    def guide(cls, urls: Mapping[str, str]) -> dict[str, Any]:
        """Anything else the person needs before filling the form (Slack: the app manifest)."""
        return {}

    @classmethod
    def generated_secrets(cls) -> dict[str, str]:
        """Secret fields the server invents itself when the integration is created (e.g. a
        webhook secret token); merged into ``Secrets`` before the first ``setup``."""
        return {}

    @property
    def http(self) -> httpx.AsyncClient:
        """One reused client per channel instance (lazily made unless one was passed in)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @classmethod
    def carried_over(cls, before: Mapping[str, Any], put: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        """What a new ``PUT`` keeps of the integration as it was (``before``: its public fields), besides the
        secrets the form leaves empty: the public fields it carries over (LinkedIn's consent, which no form
        can give again) and the stored secrets it drops (tokens of a consent that no longer applies)."""
        return {}, frozenset()

    def settings_problem(self) -> ChannelError | None:
        """Why these settings cannot be stored as they are (messaging switched on before any consent)."""
        return None

    def blocked(self) -> ChannelError | None:
        """Why no message may move now (LI-3: LinkedIn's approval gate), or None; new deployments of the
        kind are refused with its code."""
        return None

    # -- binding -----------------------------------------------------------------------------------

    @classmethod
    def start_link(cls, public: Mapping[str, Any], token: str) -> str | None:
        """The one-time link that binds whoever opens it (setup mode ``start_token``), from the
        integration's public fields; None when this channel has no such links or is not set up."""
        return None

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        """Why ``address`` cannot name a conversation on this provider (an admin's literal binding),
        or None when it can."""
        return None

    @classmethod
    def owner_from_setup(cls, setup: Mapping[str, Any]) -> str | None:
        """The owner identity a deployment's ``setup`` names, for channels whose conversations prove no owner
        (LinkedIn's ``owner_member``); ``ValueError`` says what is wrong with it."""
        return None

    @classmethod
    def installation_of(cls, address: str) -> str | None:
        """The installation a conversation belongs to, named in its address (a Slack team id); None for
        channels with one set of credentials per integration."""
        return None

    @classmethod
    def owner_of_address(cls, address: str) -> str | None:
        """The provider identity that owns a literal address when the address alone proves it (a
        private chat's id is its user's), so that person can decide approvals; else None."""
        return None

    def attach_installations(self, installations: Mapping[str, Mapping[str, Any]]) -> None:
        """Per-installation credentials (e.g. each Slack workspace's bot token), keyed by the
        installation's provider id; the channel hub attaches them. Channels with one set of
        credentials per integration ignore them."""
        return None

    # -- inbound ---------------------------------------------------------------------------------

    @abstractmethod
    def verify(self, raw: RawRequest) -> Verdict:
        """Check the provider's signature/secret over the raw bytes, in constant time."""

    @abstractmethod
    def parse(self, raw: RawRequest) -> list[Inbound]:
        """Messages and button presses in the request; [] for own echoes and ignored events.
        Raises ``MalformedPayload`` on broken JSON or shape."""

    def learn(self, items: Sequence[Inbound]) -> None:
        """After the items were stored: start any lookup that makes later items richer (Slack looks up
        a sender's display name once and caches it). Must not block or raise."""
        return None

    # -- pulling (an optional second receiver) ---------------------------------------------------

    def pulls(self) -> bool:
        """Whether this integration receives by pulling from the provider (Telegram's long polling,
        Slack's Socket Mode) because the provider cannot reach this server's webhook."""
        return False

    async def pull_forever(self, deliver: Deliver) -> None:
        """Receive until cancelled, handing each batch to ``deliver`` (which stores it durably) before
        acknowledging it to the provider. Raises when the connection fails; the caller retries."""
        raise NotImplementedError(f"{self.kind} does not pull")

    # -- outbound --------------------------------------------------------------------------------

    def render(self, outbound: Outbound) -> list[dict[str, Any]]:
        """PURE: the outbound as provider payloads. Degrades to text what it cannot render
        natively; never truncates (long text becomes several payloads)."""
        text = outbound.text
        chips = list(outbound.suggested_replies)
        native_chips = bool(chips) and bool(text.strip()) and self.chips_fit(chips)
        if chips and not native_chips:
            text = _append(text, self.chips_as_text(chips))
        payloads = [self.text_payload(chunk, outbound.thread) for chunk in self._chunks(text)]
        if native_chips:
            payloads[-1] = self.with_chips(payloads[-1], chips)
        if outbound.approval is not None:
            payloads.extend(self.render_approval(outbound.approval, outbound.thread))
        return payloads

    def render_approval(self, approval: ApprovalPrompt, thread: str | None) -> list[dict[str, Any]]:
        native = self.capabilities.native_approvals and self.approval_fits(approval)
        text = approval.text if native else _append(approval.text, APPROVAL_TEXT_PROMPT)
        payloads = [self.text_payload(chunk, thread) for chunk in self._chunks(text)]
        if native:
            payloads[-1] = self.with_approval(payloads[-1], approval)
        return payloads

    def _chunks(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return split_text(text, self.capabilities.max_text, self.measure)

    # Hooks a channel overrides for what it renders natively.

    def measure(self, text: str) -> int:
        """Text length as the provider counts it."""
        return len(text)

    def chips_fit(self, chips: Sequence[str]) -> bool:
        caps = self.capabilities
        if not 0 < len(chips) <= caps.max_chips or len(set(chips)) != len(chips):
            return False
        return all(label.strip() != "" and len(label) <= caps.max_chip_label for label in chips)

    def chips_as_text(self, chips: Sequence[str]) -> str:
        return "\n".join(f"{n}. {label}" for n, label in enumerate(chips, start=1))

    def approval_fits(self, approval: ApprovalPrompt) -> bool:
        return True

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": text}
        if thread is not None:
            payload["thread"] = thread
        return payload

    def with_chips(self, payload: dict[str, Any], chips: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.kind} declares native chips but does not render them")

    def with_approval(self, payload: dict[str, Any], approval: ApprovalPrompt) -> dict[str, Any]:
        raise NotImplementedError(f"{self.kind} declares native approvals but does not render them")

    @abstractmethod
    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        """Deliver one rendered payload. Never raises for provider failures: 429 (with its
        retry-after), 5xx, timeouts and connection errors come back retryable; other 4xx not."""

    def window_closed(self, last_inbound_at: datetime | None) -> SendResult:
        """The failure of a send outside ``reply_window`` (the outbox calls it instead of ``send``)."""
        since = "never wrote" if last_inbound_at is None else f"last wrote at {last_inbound_at:%Y-%m-%d %H:%M} UTC"
        return SendResult.failed("window_closed", f"the person {since}; {self.display_name} only allows replies "
                                 f"within {self.reply_window} of their last message", retryable=False)

    def unreadable_reply(self, what: str) -> str:
        """The polite answer to a message the product cannot read (``InboundMessage.unreadable``)."""
        return (f"Sorry, I can't read {what} yet. I can read text messages and button taps: "
                "please type what you'd like to say.")

    async def edit_approval(self, address: str, provider_message_id: str, outcome_text: str) -> SendResult:
        """Show the decision on the approval message (and drop its buttons) where possible."""
        return SendResult.sent(provider_message_id)

    async def acknowledge_action(self, action: InboundAction, answer: TapAnswer) -> None:
        """Answer a button press once its outcome committed (a toast that stops a Telegram spinner,
        a Slack modal asking for the correction)."""
        return None

    # -- the send tool (DEP-6) and tools beside it ----------------------------------------------------

    # A send tool of its own shape (email_send: to, subject, body); None: the standard (text, quick replies).
    send_tool_parameters: ClassVar[dict[str, Any] | None] = None
    send_tool_description: ClassVar[str] = ""

    def outbound_from_tool(self, arguments: Mapping[str, Any]) -> Outbound:
        """The message a call of the channel's own send tool asks for; ``ValueError`` says what is wrong."""
        raise NotImplementedError(f"{self.kind} has the standard send tool")

    def tools_for(self, address: str) -> list[ToolSpec]:
        """The tools a smith bound at ``address`` may use, as far as the installation's grants allow."""
        return []

    async def call_tool(self, name: str, address: str, arguments: Mapping[str, Any]) -> str:
        """Run one of ``tools_for``'s tools; ``ChannelError`` (with a stable code) when it cannot."""
        raise ChannelError(f"{self.kind} has no tool {name!r}", code="unknown_tool")

    # -- onboarding ------------------------------------------------------------------------------

    async def setup(self, *, webhook_url: str) -> SetupInfo:
        """Register with the provider where it can be automated; otherwise list the steps."""
        return SetupInfo(mode="webhook", webhook_url=webhook_url,
                         steps=[f"Point the provider's webhook at {webhook_url}."])

    def credentials_due(self, now: datetime) -> bool:
        """Whether credentials that expire (Slack's app configuration token) should be renewed now; the
        leader asks every few seconds (app.services.polling)."""
        return False

    async def renew_credentials(self, now: datetime) -> Renewed:
        """New credentials for ``credentials_due``; ``SetupError`` (with a stable code) when refused."""
        raise SetupError(f"{self.kind} has no credentials to renew", code="not_renewable")

    async def teardown(self) -> None:
        """Undo ``setup`` at the provider (e.g. delete the webhook)."""
        return None

    # Whether the provider must be told when an agent catch-all comes or goes (``catch_all_changed``).
    catch_all_at_provider: ClassVar[bool] = False

    async def catch_all_changed(self, active: bool) -> None:
        """An agent catch-all was created (or removed): route what nobody else answers here (EM-4: the
        domain's catch-all rule), or stop. ``SetupError`` when the provider refuses."""
        return None


def _append(text: str, extra: str) -> str:
    return f"{text.rstrip()}\n\n{extra}" if text.strip() else extra
