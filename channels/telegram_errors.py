"""What a failed Bot API call means to the outbox (python-telegram-bot's exceptions as a ``SendResult``)."""

from __future__ import annotations

import datetime as dtm
import warnings

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from channels import types as t
from channels.types import SendResult


def classify(exc: TelegramError) -> SendResult:
    """A PTB exception as a ``SendResult`` (reference: PTB ``_request_wrapper`` mapping)."""
    message = str(exc)
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():  # PTB 22.2+ warns that the int form will become a timedelta
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            delay = exc.retry_after
        seconds = delay.total_seconds() if isinstance(delay, dtm.timedelta) else float(delay)
        return SendResult.failed(t.RATE_LIMITED, message, retryable=True, retry_after=seconds)
    if isinstance(exc, Forbidden):  # bot blocked, user deactivated, kicked from the group
        return SendResult.failed(t.BLOCKED, message, retryable=False)
    if isinstance(exc, InvalidToken):
        return SendResult.failed(t.UNAUTHORIZED, message, retryable=False)
    if isinstance(exc, ChatMigrated):
        return SendResult.failed("chat_migrated", f"{message} (new chat id {exc.new_chat_id})",
                                 retryable=False)
    if isinstance(exc, BadRequest | Conflict):
        return SendResult.failed(t.BAD_REQUEST, message, retryable=False)
    if isinstance(exc, NetworkError):
        # PTB raises NetworkError both for transport failures (with the transport error as cause)
        # and for unexpected statuses such as 5xx (no cause).
        code = t.NETWORK if isinstance(exc, TimedOut) or exc.__cause__ is not None else t.SERVER_ERROR
        return SendResult.failed(code, message, retryable=True)
    return SendResult.failed(t.BAD_REQUEST, message, retryable=False)
