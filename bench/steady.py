"""Light, steady traffic and none at all (issue 19 §2): what self-hosters mostly run. Used by bench/webhook.py.

``idle_cpu`` samples a server's CPU while nothing is sent; ``paced`` posts updates at a fixed rate (each
conversation's in order, round robin over the conversations, none waiting for another's answer) and reports the
server's CPU per update from the first post to the last reply, beside the end-to-end latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.drive import Conversations, Record
from bench.stats import pct


async def idle_cpu(read: Callable[[], float], seconds: float) -> float:
    """Percent of one core the process tree used over ``seconds`` of no traffic."""
    before, began = read(), time.monotonic()
    await asyncio.sleep(seconds)
    return (read() - before) / (time.monotonic() - began) * 100


async def paced(url: str, conversations: Conversations, *, rate: float, headers_of: Callable[[bytes], dict[str, str]],
                fake_url: str, record: Record, reply_of: Callable[[str], str], settle_s: float,
                cpu_of: Callable[[], float]) -> dict[str, Any]:
    """Post one update every 1/``rate`` seconds until all are sent; then wait for every reply."""
    order = [message for round_ in zip(*conversations, strict=False) for message in round_]
    sent_at: dict[str, float] = {}
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession(f"{fake_url}/", timeout=aiohttp.ClientTimeout(total=30)) as control:
        async def received_since(since: int) -> dict[str, Any]:
            async with control.get(record.path.lstrip("/"), params={"since": str(since)}) as response:
                return dict(await response.json())

        start = (await received_since(10**9))["count"]
        cpu_before = cpu_of()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
            async def post(text: str, body: bytes) -> None:
                sent_at[text] = time.monotonic()
                try:
                    async with client.post(url, data=body, headers={"content-type": "application/json",
                                                                    **headers_of(body)}) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                statuses[status] = statuses.get(status, 0) + 1

            first = time.monotonic()
            posts = []
            for n, (text, body) in enumerate(order):
                await asyncio.sleep(max(0.0, first + n / rate - time.monotonic()))
                posts.append(asyncio.create_task(post(text, body)))
            await asyncio.gather(*posts)
            sending_s = time.monotonic() - first

        expected = {reply_of(text): text for text in sent_at}
        replied_at: dict[str, float] = {}
        seen = 0
        deadline = time.monotonic() + settle_s
        while len(replied_at) < len(expected) and time.monotonic() < deadline:
            page = (await received_since(start + seen))[record.key]
            seen += len(page)
            for item in page:
                text = expected.get(record.text_of(item))
                if text is not None and text not in replied_at:  # the fake's monotonic clock is this one's
                    replied_at[text] = float(item["received_at"])
            if len(replied_at) < len(expected):
                await asyncio.sleep(0.05)
        cpu_s = cpu_of() - cpu_before
    latencies = [replied_at[text] - sent_at[text] for text in replied_at]
    return {"rate": rate, "sent": len(sent_at), "achieved_rps": len(sent_at) / sending_s, "statuses": statuses,
            "replied": len(replied_at), "e2e_p50": pct(latencies, 50), "e2e_p99": pct(latencies, 99),
            "cpu_ms_server": cpu_s / max(len(sent_at), 1) * 1000,
            "cpu_pct_server": cpu_s / sending_s * 100}


def show_paced(r: dict[str, Any]) -> None:
    print(f"  steady {r['rate']:g}/s: sent {r['sent']} at {r['achieved_rps']:.1f}/s {r['statuses']}, "
          f"replied {r['replied']}, e2e p50 {r['e2e_p50']:.0f} ms p99 {r['e2e_p99']:.0f} ms, "
          f"server CPU {r['cpu_ms_server']:.2f} ms/update = {r['cpu_pct_server']:.1f}% of a core", flush=True)
