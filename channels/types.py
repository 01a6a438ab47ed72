"""Plain values shared by every channel: what comes in, what goes out, what a send did.

Nothing here knows a provider; ``channels/<kind>.py`` maps its wire format onto these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.redact import redact

# Stable ``SendResult.error_code`` values (the outbox and the console key on them).
RATE_LIMITED = "rate_limited"
BLOCKED = "blocked"
BAD_REQUEST = "bad_request"
NETWORK = "network"
SERVER_ERROR = "server_error"
UNAUTHORIZED = "unauthorized"

# A ``ProviderEvent`` about a message we sent: ``data`` holds ``provider_message_id``, ``status`` (sent,
# delivered, read or failed), ``at`` (a datetime or None) and, when it failed, ``error`` (the reason).
DELIVERY_STATUS = "delivery_status"


@dataclass(frozen=True, slots=True)
class RawRequest:
    """An inbound HTTP request exactly as received: signatures are computed over ``body``."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        # Header names are case-insensitive on the wire; channels look them up lower-cased.
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of ``Channel.verify``: accept (go on to parse), challenge (reply with ``body``
    right away, e.g. Slack url_verification or Meta hub.challenge) or reject (401, never parse)."""

    kind: Literal["accept", "challenge", "reject"]
    body: str | None = None
    reason: str | None = None
    # LinkedIn's validation answer is JSON; Slack and Meta take the challenge as plain text.
    content_type: str = "text/plain"

    @classmethod
    def accept(cls) -> Verdict:
        return cls("accept")

    @classmethod
    def challenge(cls, body: str, content_type: str = "text/plain") -> Verdict:
        return cls("challenge", body=body, content_type=content_type)

    @classmethod
    def reject(cls, reason: str) -> Verdict:
        return cls("reject", reason=reason)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A person's text message. ``sender_id`` is authenticated by the channel (ID-2)."""

    dedupe_key: str
    address: str  # where the reply goes (Telegram chat id, Slack channel, email address...)
    thread: str | None
    sender_id: str  # "<kind>:<provider id>", never a display name
    sender_display: str
    text: str
    start_payload: str | None  # deep-link /start token or WhatsApp connect token
    is_direct: bool
    provider_message_id: str | None
    # Spoken to the bot (a DM, an @-mention, a reply to it). A channel may pass on messages that are
    # not (Slack channels), so a deployment that listens to everything (wake: all_messages) hears them.
    addressed: bool = True
    # What the person sent that the product cannot read (``"a sticker"``): never given to the model;
    # the person gets ``Channel.unreadable_reply`` instead of silence.
    unreadable: str | None = None
    # Whether the provider vouches for ``sender_id`` (an email's DMARC pass, ID-3). An unverified sender is
    # never an owner and never mints a smith of its own.
    verified: bool = True
    # What a reply to this message must carry (an email's Message-ID, References and Subject): kept on
    # the run it starts and given back to ``Channel.render`` with the reply.
    reply_context: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class InboundAction:
    """A button press. ``token`` is the opaque button data: attacker-controlled, look it up."""

    dedupe_key: str
    address: str
    thread: str | None
    sender_id: str
    sender_display: str
    token: str
    provider_message_id: str | None  # the message that carried the button
    action_id: str | None  # e.g. a Telegram callback_query id to answer, a Slack trigger id
    text: str | None = None  # what the person typed with it (Slack's Edit modal: the correction)


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """Something the provider tells about an installation rather than a person's message: an uninstall,
    revoked tokens, an assistant thread opened, a delivery status. Routed by ``type``."""

    dedupe_key: str
    type: str  # uninstalled | user_tokens_revoked | delivery_status (DELIVERY_STATUS) | ...
    installation: str  # the provider's id of the installation (a Slack team id)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TapAnswer:
    """How a channel answers a button tap at once: a toast (Telegram), an ephemeral note when the
    tap was refused, or a form asking for the correction (Slack's Edit modal)."""

    text: str | None = None
    refused: bool = False
    ask_for_edit: bool = False


Inbound = InboundMessage | InboundAction | ProviderEvent


@dataclass(frozen=True, slots=True)
class ApprovalPrompt:
    text: str
    approve_token: str
    reject_token: str
    edit_token: str | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    text: str
    suggested_replies: list[str] = field(default_factory=list)
    approval: ApprovalPrompt | None = None
    thread: str | None = None
    reply_context: Mapping[str, str] | None = None  # InboundMessage.reply_context of what this answers


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    provider_message_id: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    error: str | None = None
    error_code: str | None = None

    @classmethod
    def sent(cls, provider_message_id: str | None = None) -> SendResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, error_code: str, error: str, *, retryable: bool,
               retry_after: float | None = None) -> SendResult:
        # Every channel's failure text ends up in last_error and the console: no credentials in it.
        return cls(ok=False, retryable=retryable, retry_after=retry_after, error=redact(error),
                   error_code=error_code)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool a channel offers a smith in one of its conversations (SL-7: search, read, list), as
    JSON Schema; ``Channel.call_tool`` runs it."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_chips: int  # 0 = no native chips: always the text list
    max_chip_label: int
    max_text: int
    native_approvals: bool


@dataclass(slots=True)
class SetupInfo:
    """What onboarding did and what the console shows next."""

    mode: Literal["webhook", "polling", "socket_mode"]
    webhook_url: str | None = None
    bot_username: str | None = None
    deep_link_base: str | None = None  # e.g. https://t.me/<bot>; a token is appended per smith
    steps: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # public facts only, never a secret
    # An installation the credentials themselves name (a Slack bot token pasted by hand names its
    # workspace): {"external_id", "name", "public", "secrets"}; stored like an OAuth install's.
    installation: dict[str, Any] | None = None
    # Secrets learnt or replaced during setup (a rotated token and its new refresh token): stored encrypted.
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Renewed:
    """Credentials a channel renewed on its own (``Channel.renew_credentials``): the new secrets, stored
    encrypted in one transaction, and public details (the new expiry)."""

    secrets: dict[str, str]
    details: dict[str, Any]
