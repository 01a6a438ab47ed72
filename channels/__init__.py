"""One module per provider behind one small interface (``channels.base.Channel``)."""

from __future__ import annotations

from channels.base import Channel
from channels.email import EmailChannel
from channels.linkedin import LinkedInChannel
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel

# Adding a channel = one module and one line here (DESIGN §4).
REGISTRY: dict[str, type[Channel]] = {
    TelegramChannel.kind: TelegramChannel,
    SlackChannel.kind: SlackChannel,
    WhatsAppChannel.kind: WhatsAppChannel,
    EmailChannel.kind: EmailChannel,
    LinkedInChannel.kind: LinkedInChannel,
}


def get_channel_class(kind: str) -> type[Channel]:
    """The channel class for ``kind``; ``KeyError`` names the known kinds."""
    try:
        return REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown channel kind {kind!r}; known: {sorted(REGISTRY)}") from None
