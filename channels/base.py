"""The one interface every provider implements (DESIGN §4).

A channel instance wraps one integration: its public ``Config``, its decrypted ``Secrets`` and the
provider's base URL. It is pure provider code: it never touches the database or services.

Render contract: ``render`` returns one payload per provider message, in send order. When the
outbound carries an approval, the LAST payload is the approval prompt; the message id its send
returns is what ``edit_approval`` needs later.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from channels.redact import redact
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


class ChannelError(Exception):
    """A channel problem with a stable ``code`` the services map to an HTTP answer."""

    code = "channel_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(redact(message))  # provider errors may quote a URL with the bot token
        if code is not None:
            self.code = code


class MalformedPayload(ChannelError):
    """The request is not valid JSON or not the provider's shape: the receiver answers 400."""

    code = "malformed_payload"


class SetupError(ChannelError):
    """Onboarding failed (bad token, provider refused the webhook, provider unreachable)."""

    code = "setup_failed"


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

    class Config(_Model):
        """The integration's public fields (shown in the console and the API)."""

    class Secrets(_Model):
        """The integration's secret fields (stored encrypted, never shown back)."""

    class Put(_Model):
        """The body of ``PUT /v1/tenant/{kind}``: fields named like ``Secrets`` fields are stored
        encrypted, the others are public (``Config``)."""

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

    async def catch_all_changed(self, active: bool) -> None:
        """An agent catch-all was created (or removed): route what nobody else answers here (EM-4: the
        domain's catch-all rule), or stop. ``SetupError`` when the provider refuses."""
        return None


def publicly_reachable(url: str) -> bool:
    """Whether a provider on the internet could call this URL: HTTPS and a public host (not localhost,
    a private address or a LAN name). Otherwise a channel that can pull does so instead."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    private_suffixes = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test", ".invalid")
    return "." in host and host != "localhost" and not host.endswith(private_suffixes)


def load_json(raw: RawRequest) -> Any:
    """The body as JSON, or ``MalformedPayload``."""
    return parse_json(raw.body)


# What a JSON text needs to hold a NUL or half a surrogate pair: only then is the parsed value walked.
_NUL_ESCAPE = b"\\u0000"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(text: bytes | str) -> Any:
    """JSON a provider sent, or ``MalformedPayload`` for anything the product cannot store as text: not
    JSON, nested too deeply to parse, a NUL character (PostgreSQL refuses it in text) or half a surrogate
    pair (not encodable as UTF-8). The checks cost a byte scan unless the text holds such an escape."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(f"body is not JSON: {type(exc).__name__}") from exc
    try:
        if _NUL_ESCAPE in raw and _holds_nul(data):
            raise MalformedPayload("a text holds a NUL character")
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedPayload("a text holds half a surrogate pair (not UTF-8)") from exc
    except RecursionError as exc:
        raise MalformedPayload("body is nested too deeply") from exc
    return data


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split into pieces each within ``limit``, preferring paragraph, line, then word breaks."""
    chunks: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        cut = _longest_prefix(rest, limit, measure)
        window = rest[:cut]
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at >= cut // 2:  # a break too early would make many tiny messages
                cut = at + len(sep)
                break
        chunk, rest = rest[:cut].rstrip(), rest[cut:]
        if chunk:
            chunks.append(chunk)
    return chunks


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    lo, hi = 1, len(text)  # at least one character, so splitting always advances
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _append(text: str, extra: str) -> str:
    return f"{text.rstrip()}\n\n{extra}" if text.strip() else extra
