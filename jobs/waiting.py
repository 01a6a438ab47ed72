"""Idle waits of the background loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


async def idle_wait(wake: asyncio.Event, timeout_s: float) -> None:
    """Sleep until ``wake`` is set or ``timeout_s`` passed.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11 it can swallow a cancellation that
    arrives as the event is set (cpython gh-86296), and a loop cancelled at shutdown then runs on
    forever. ``asyncio.timeout`` propagates the cancellation.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await wake.wait()


# Inbound first. A provider waits for its webhook's answer (Slack gives up after 3 s, Telegram slows
# its deliveries down), while a run or a send can start a little later. On SQLite every transaction
# queues for the one connection, so under a burst the background loops give way: they start their
# next transaction once no webhook is in flight, or after INBOUND_FIRST_MAX_S at the latest, so
# replies never stop while webhooks keep coming.
INBOUND_FIRST_MAX_S = 0.25
_POLL_S = 0.005
_inbound_in_flight = 0


@contextlib.contextmanager
def inbound_request() -> Iterator[None]:
    """Marks a provider request in flight in this process (the webhook receiver wraps its work)."""
    global _inbound_in_flight
    _inbound_in_flight += 1
    try:
        yield
    finally:
        _inbound_in_flight -= 1


def inbound_in_flight() -> int:
    """How many provider requests this process is storing now (verified ones only)."""
    return _inbound_in_flight


async def inbound_first(max_wait_s: float = INBOUND_FIRST_MAX_S) -> None:
    """Called by background loops before each claim: wait while webhooks are in flight (bounded)."""
    waited = 0.0
    while _inbound_in_flight and waited < max_wait_s:
        await asyncio.sleep(_POLL_S)
        waited += _POLL_S
