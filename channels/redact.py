"""Secrets out of error text and logs, in one place.

Provider URLs can carry credentials: Telegram's is ``{api}/bot<id>:<token>/<method>``, and an
``IC_*_API_URL`` may hold a password (``https://user:pass@proxy``) or a key in its query. Transport
errors quote the URL they failed on (aiohttp's ``TooManyRedirects``, ``InvalidUrlClientError``,
``NonHttpUrlClientError``...), so without this the bot token reached ``last_error``, API answers
and the log.

Two ways in, one set of patterns:

- ``redact(text)``: the error path. ``SendResult.failed`` and ``SetupError`` (every channel's
  failures), the outbox's ``last_error`` and the API's error messages pass through it.
- ``install_log_redaction()``: every log record of every logger (ours, aiohttp, PTB, httpx...) is
  redacted when it is made, message, arguments and traceback alike. A ``logging.Filter`` on a
  logger sees only records logged on that very logger, not those its children propagate, and one
  on a handler misses handlers added later (pytest's caplog included), so the filter runs from the
  log-record factory.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram: /bot<id>:<token> in a URL path (also /file/bot...), and a bare bot token.
    (re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
    (re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # Slack tokens (bot, user, app-level), and the app factory's configuration and refresh tokens
    # (xoxe.xoxp-…, xoxe-…).
    (re.compile(r"\bxoxe[.-][A-Za-z0-9.-]{8,}"), REDACTED),
    (re.compile(r"\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]{8,}"), REDACTED),
    # One-time start codes as a person sends them (Telegram's "/start <token>", WhatsApp's greeting) and in
    # a deep link: libraries log the updates they fetch (python-telegram-bot's getUpdates at DEBUG).
    (re.compile(r"(/start(?:\s|%20|\+)+|connect code is\s+|[?&]start=)[A-Za-z0-9_-]{16,}", re.IGNORECASE),
     rf"\1{REDACTED}"),
    # Credentials in a URL's authority: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
    # The webhook secret as PTB's debug log prints setWebhook's parameters, or in a form body.
    (re.compile(r"""(['"]?secret_token['"]?\s*[:=]\s*['"]?)[A-Za-z0-9_-]+"""), rf"\1{REDACTED}"),
    # Keys in a query string. Not plain "token": the console's setup link is logged on purpose.
    (re.compile(r"([?&](?:access_token|api_key|apikey|key|client_secret|secret|password|sig|signature)=)"
                r"[^&\s'\"]+", re.IGNORECASE), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with provider credentials replaced by ``[redacted]``."""
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(arg: object) -> object:
    if arg is None or isinstance(arg, int | float):
        return arg
    if isinstance(arg, str):
        return redact(arg)
    text = str(arg)
    cleaned = redact(text)
    return arg if cleaned == text else cleaned  # an exception or URL object quoting a secret


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redacts the record's message and each argument, keeping the arguments' shape (formatters such
    as uvicorn's access log unpack them), and pre-renders its traceback redacted."""
    record.msg = _redact_arg(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: _redact_arg(value) for key, value in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactSecrets(logging.Filter):
    """The same redaction as a filter, for a handler configured outside this process's start-up."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install_log_redaction() -> None:
    """Redacts every log record from now on (idempotent; call at process start)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(redacted_record)
    _installed = True
