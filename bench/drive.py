"""What the webhook benchmarks share (bench/webhook.py, bench/slack.py, bench/whatsapp.py): a server in its own
process, the load (each conversation's posts in order, many conversations at once), reading back what the
fake provider received, and the figures: ingest, end to end, lost, duplicated, per-conversation order, CPU.

Every conversation's texts are ``m-{conversation}-{k}`` (k counting from 0 in send order): the figures find a
reply's post, and check each conversation's order, from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.stats import pct, tree_cpu_seconds
from tests.integration.conftest import ROOT

LATE_DUPLICATES_S = 1.0  # after the last expected reply, how long to keep listening for duplicates
PROCESS_START_S = 30.0

Conversations = list[list[tuple[str, bytes]]]  # each conversation's (text, body posted), in send order
CpuReaders = dict[str, Callable[[], float]]  # name -> CPU seconds so far ("server", "fake", "driver")


@dataclass(frozen=True)
class Record:
    """Where a fake in its own process tells what it received: ``GET {path}?since=N`` answers
    ``{"count": total, key: [the N-th on]}``, each with ``received_at`` (time.monotonic() in the fake's
    process: on Linux one clock for every process, so this one can subtract its own readings)."""

    path: str
    key: str
    text_of: Callable[[dict[str, Any]], str] = lambda item: str(item["text"])


def you_said(text: str) -> str:
    """The reply the product's built-in model gives (and the echo baselines mimic)."""
    return f"You said: {text}"


@contextlib.contextmanager
def own_process(command: list[str], ready_url: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Python module in its own process (and session, so stopping it stops its children too)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + PROCESS_START_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command[1:3])} exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command[1:3])} did not start in {PROCESS_START_S:.0f} s") from None
                time.sleep(0.1)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


async def checked(call: Any) -> dict[str, Any]:
    """An API call's JSON answer, or an error saying which call failed and why."""
    response: httpx.Response = await call
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:500]}")
    return dict(response.json())


def process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds so far of a process and all its descendants."""
    return lambda: tree_cpu_seconds(pid)


async def drive(url: str, conversations: Conversations, *, headers_of: Callable[[bytes], dict[str, str]],
                concurrency: int, fake_url: str, record: Record, reply_of: Callable[[str], str] | None,
                settle_s: float, cpu_of: CpuReaders) -> dict[str, Any]:
    """Post every conversation (each in order, a post once the last one was answered, ``concurrency`` posts in
    flight), then collect the replies from the fake's ``record`` until each expected one came (``reply_of``
    maps a text to its reply; None: nobody answers, ingest only) or ``settle_s`` passed."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    # aiohttp, not httpx: httpx spent about 2.8 ms of CPU per post here (aiohttp about 0.15 ms), so the driver took
    # most of a core of this 2-core machine from the servers and capped even the bare endpoint near 300/s.
    async with aiohttp.ClientSession(f"{fake_url}/", timeout=aiohttp.ClientTimeout(total=30)) as control:
        async def received_since(since: int) -> dict[str, Any]:
            async with control.get(record.path.lstrip("/"), params={"since": str(since)}) as response:
                return dict(await response.json())

        start = (await received_since(10**9))["count"]
        cpu_before = {name: read() for name, read in cpu_of.items()}

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                         timeout=aiohttp.ClientTimeout(total=120)) as client:
            async def converse(messages: list[tuple[str, bytes]]) -> None:
                for text, body in messages:  # the provider sends a conversation's next post once this one is answered
                    async with gate:
                        began = time.monotonic()
                        sent_at[text] = began
                        try:
                            async with client.post(url, data=body, headers={"content-type": "application/json",
                                                                            **headers_of(body)}) as response:
                                await response.read()
                                status = str(response.status)
                        except (aiohttp.ClientError, TimeoutError) as exc:
                            status = type(exc).__name__
                        latencies.append(time.monotonic() - began)
                        statuses[status] = statuses.get(status, 0) + 1

            first_post = time.monotonic()
            await asyncio.gather(*(converse(messages) for messages in conversations))
            ingest_s = time.monotonic() - first_post

        posts = max(len(sent_at), 1)
        result: dict[str, Any] = {"ingest_rps": len(latencies) / ingest_s, "ingest_p50": pct(latencies, 50),
                                  "ingest_p99": pct(latencies, 99), "statuses": statuses}
        if reply_of is None:
            result.update({f"cpu_ms_{name}": (read() - cpu_before[name]) / posts * 1000
                           for name, read in cpu_of.items()})
            return result

        expected = {reply_of(text): text for text in sent_at}
        received: list[dict[str, Any]] = []
        seen: set[str] = set()

        async def collect() -> None:
            page = (await received_since(start + len(received)))[record.key]
            received.extend(page)
            seen.update(record.text_of(item) for item in page)

        deadline = time.monotonic() + settle_s
        await collect()
        while not expected.keys() <= seen and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await collect()
        cpu_spent = {name: read() - cpu_before[name] for name, read in cpu_of.items()}  # first post to last reply
        await asyncio.sleep(LATE_DUPLICATES_S)
        await collect()

    result.update(replies_figures(received, record, expected, sent_at, first_post))
    result.update({f"cpu_ms_{name}": spent / posts * 1000 for name, spent in cpu_spent.items()})
    return result


def replies_figures(received: list[dict[str, Any]], record: Record, expected: dict[str, str],
                    sent_at: dict[str, float], first_post: float) -> dict[str, Any]:
    """End to end (each post to the first receipt of its reply), lost, duplicated, other and order."""
    first_reply_at: dict[str, float] = {}
    duplicated = other = 0
    order_ok, last_k = True, dict[str, int]()
    for item in received:
        original = expected.get(record.text_of(item))
        if original is None:
            other += 1
            continue
        if original in first_reply_at:
            duplicated += 1
            continue
        first_reply_at[original] = float(item["received_at"])
        _, conversation, k = original.split("-")
        if int(k) < last_k.get(conversation, -1):
            order_ok = False
        last_k[conversation] = int(k)
    e2e = [at - sent_at[text] for text, at in first_reply_at.items()]
    last_reply = max(first_reply_at.values(), default=first_post + 1e-9)
    return {"e2e_rps": len(e2e) / max(last_reply - first_post, 1e-9), "e2e_p50": pct(e2e, 50),
            "e2e_p95": pct(e2e, 95), "e2e_p99": pct(e2e, 99), "lost": len(expected) - len(first_reply_at),
            "duplicated": duplicated, "other": other, "in_order": order_ok}


def show(name: str, r: dict[str, Any], *, unit: str, fake: str, conversation: str = "conversation") -> None:
    """One server's figures: ``unit`` is what a post carries (update, event, message), ``fake`` the provider's."""
    pad = " " * 8
    lines = [f"{name:<8}ingest {r['ingest_rps']:7.0f}/s  p50 {r['ingest_p50']:6.1f} ms  p99 {r['ingest_p99']:6.1f} ms"
             f"  statuses {r['statuses']}"]
    if "e2e_rps" in r:
        lines += [f"{pad}e2e    {r['e2e_rps']:7.0f}/s  p50 {r['e2e_p50']:6.1f} ms  p95 {r['e2e_p95']:6.1f} ms"
                  f"  p99 {r['e2e_p99']:6.1f} ms",
                  f"{pad}lost {r['lost']}  duplicated {r['duplicated']}  other replies {r['other']}"
                  f"  per-{conversation} order {'ok' if r['in_order'] else 'BROKEN'}"]
    lines.append(f"{pad}CPU per {unit}: server {r['cpu_ms_server']:.2f} ms (all its processes), {fake}"
                 f" {r['cpu_ms_fake']:.2f} ms, load driver {r['cpu_ms_driver']:.2f} ms")
    print("\n".join(lines), flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def ratio(product: dict[str, Any], baseline: dict[str, Any], key: str) -> float:
    return float(product[key]) / baseline[key] if baseline[key] else float("nan")


def report_e2e_target(rounds: dict[float, dict[str, dict[str, Any]]], baseline: str, label: str,
                      target: float) -> dict[float, dict[str, Any]]:
    """The issue's figure: end-to-end throughput at 50 ms, product over ``baseline``, with the product's
    order kept; then lost and duplicated. Returns the product's rounds by latency."""
    print("\n== targets (product) ==")
    at_50 = rounds.get(50.0)
    if at_50 and baseline in at_50:
        product = at_50["product"]
        e2e = ratio(product, at_50[baseline], "e2e_rps")
        print(f"end-to-end throughput at 50 ms, product/{label}: {e2e:.2f} (target >= {target}), each "
              f"conversation in order: {'yes' if product['in_order'] else 'no'} -> "
              f"{verdict(e2e >= target and product['in_order'])}")
    else:
        print(f"end-to-end throughput at 50 ms, product/{label}: not measured (needs latency 50 and {label})")
    products = {latency: results["product"] for latency, results in rounds.items()}
    lost, duplicated = (sum(r[key] for r in products.values()) for key in ("lost", "duplicated"))
    print(f"lost {lost}, duplicated {duplicated} (target 0 and 0) -> {verdict(lost == 0 and duplicated == 0)}",
          flush=True)
    return products
