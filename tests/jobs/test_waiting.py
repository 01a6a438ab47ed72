"""Background loops give way to webhooks in flight, for a bounded time (jobs.waiting)."""

from __future__ import annotations

import asyncio

from jobs.waiting import idle_wait, inbound_first, inbound_request


async def test_no_webhook_in_flight_means_no_wait() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    await inbound_first(max_wait_s=5)
    assert loop.time() - began < 0.5


async def test_background_waits_until_the_webhook_is_done() -> None:
    order: list[str] = []

    async def webhook() -> None:
        with inbound_request():
            await asyncio.sleep(0.1)
            order.append("webhook stored")

    async def background() -> None:
        await asyncio.sleep(0.01)  # the webhook is in flight by now
        await inbound_first(max_wait_s=5)
        order.append("background claims")

    await asyncio.gather(webhook(), background())
    assert order == ["webhook stored", "background claims"]


async def test_a_steady_stream_of_webhooks_does_not_starve_the_background() -> None:
    loop = asyncio.get_running_loop()
    with inbound_request():  # never ends while background waits
        began = loop.time()
        await inbound_first(max_wait_s=0.1)
        waited = loop.time() - began
    assert 0.09 <= waited < 1.0


async def test_an_unfinished_request_is_not_counted_after_an_error() -> None:
    try:
        with inbound_request():
            raise ValueError("the webhook failed")
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    began = loop.time()
    await inbound_first(max_wait_s=5)
    assert loop.time() - began < 0.5


async def test_idle_wait_returns_when_woken() -> None:
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, wake.set)
    began = loop.time()
    await idle_wait(wake, 5)
    assert loop.time() - began < 1.0
