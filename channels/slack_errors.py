"""Slack's failures as the outbox understands them (channels/slack.py's sends)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from channels.slack_setup import AUTH_ERRORS
from channels.types import SendResult

GONE_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "user_not_found",
                         "cannot_dm_bot", "user_disabled"})


def classify(exc: BaseException) -> SendResult:
    """A Slack failure as the outbox understands it: 429 and 5xx retry, Slack's error code is kept."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = str(response.get("error") or "error") if hasattr(response, "get") else "error"
        if status == 429 or error == "ratelimited":
            retry_after = _retry_after(getattr(response, "headers", {}) or {})
            return SendResult.failed("rate_limited", "slack: ratelimited", retryable=True, retry_after=retry_after)
        if status >= 500 or error in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
            return SendResult.failed("server_error", f"slack: {error} (HTTP {status})", retryable=True)
        if error in AUTH_ERRORS:
            return SendResult.failed("unauthorized", f"slack: {error}", retryable=False)
        if error in GONE_ERRORS:
            return SendResult.failed("blocked", f"slack: {error}", retryable=False)
        return SendResult.failed("bad_request", f"slack: {error}", retryable=False)
    if isinstance(exc, (aiohttp.ClientError, TimeoutError, OSError)):
        return SendResult.failed("network", f"slack unreachable: {type(exc).__name__}", retryable=True)
    return SendResult.failed("channel_error", f"{type(exc).__name__}: {exc}", retryable=True)


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                return None
    return None
