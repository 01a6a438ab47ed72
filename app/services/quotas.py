"""Quotas (issue 13 §6): provider_metadata's size, and runs per chat sender and per token per minute.

Runs are LLM spend, so their limits are checked before anything is stored. The windows live in the
process (a sliding window per key, a deque of start times): checking one costs a dict lookup and
an append, which the inbound hot path (a few ms of CPU per update in all) can afford. With several
server processes each process counts its own share, so the effective limit is N times the setting
for N processes; a shared limit needs a shared counter (Redis INCR with expiry, or a row per key
and minute) — see the report of issue 13.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from app.services.actors import Actor
from app.services.errors import RateLimited
from app.services.runtime import get_runtime

PROVIDER_METADATA_TOO_LARGE = "provider_metadata_too_large"


def _cap_provider_metadata(value: dict[str, Any]) -> dict[str, Any]:
    limit = get_runtime().settings.provider_metadata_max_bytes
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        # The error type becomes the answer's code (app/api/errors.py, VALIDATION_CODES).
        raise PydanticCustomError(PROVIDER_METADATA_TOO_LARGE,
                                  "provider_metadata may hold at most {limit} bytes as JSON (got {size})",
                                  {"limit": limit, "size": size})
    return value


ProviderMetadata = Annotated[dict[str, Any], AfterValidator(_cap_provider_metadata)]


class SlidingWindow:
    """At most ``limit`` events per ``window_s`` per key, in this process. ``limit`` 0 = no limit."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[tuple[str, ...], deque[float]] = {}

    def allow(self, key: tuple[str, ...], limit: int) -> bool:
        """Count one event for ``key`` unless it would exceed ``limit``; False = over the limit."""
        if limit <= 0:
            return True
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._sweep(now)
            events = self._events[key] = deque()
        horizon = now - self.window_s
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) >= limit:
            return False
        events.append(now)
        return True

    def _sweep(self, now: float) -> None:
        """Forget keys with no event in the window (bounds memory under many one-off senders)."""
        horizon = now - self.window_s
        for key in [k for k, v in self._events.items() if not v or v[-1] <= horizon]:
            del self._events[key]

    def clear(self) -> None:
        self._events.clear()


_runs = SlidingWindow()
_notices = SlidingWindow()


def allow_sender_run(project_id: str, kind: str, sender: str) -> bool:
    """A chat sender may start ``IC_RUNS_PER_SENDER_PER_MINUTE`` runs a minute (per project)."""
    return _runs.allow(("sender", project_id, kind, sender), get_runtime().settings.runs_per_sender_per_minute)


def first_refusal(project_id: str, kind: str, sender: str) -> bool:
    """True once a minute per sender: whether to tell them they are over the limit."""
    return _notices.allow(("notice", project_id, kind, sender), 1)


def check_token_run(actor: Actor) -> None:
    """One API token may start ``IC_RUNS_PER_TOKEN_PER_MINUTE`` runs a minute (API runs, MCP asks).
    The console (no token) is not limited: it is the admin at the keyboard."""
    limit = get_runtime().settings.runs_per_token_per_minute
    if actor.token_id and not _runs.allow(("token", actor.token_id), limit):
        raise RateLimited(f"this token may start at most {limit} runs a minute; try again shortly",
                          code="rate_limited", details={"limit": limit, "window_s": 60})


def reset_run_windows() -> None:
    """Tests: every test starts with empty windows."""
    _runs.clear()
    _notices.clear()
