"""The errors channels raise, each with a stable code the services map to an HTTP answer."""

from __future__ import annotations

from channels.redact import redact


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
