"""Idle waits of the background loops."""

from __future__ import annotations

import asyncio
import contextlib


async def idle_wait(wake: asyncio.Event, timeout_s: float) -> None:
    """Sleep until ``wake`` is set or ``timeout_s`` passed.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11 it can swallow a cancellation that
    arrives as the event is set (cpython gh-86296), and a loop cancelled at shutdown then runs on
    forever. ``asyncio.timeout`` propagates the cancellation.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await wake.wait()
