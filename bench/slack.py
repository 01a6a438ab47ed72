"""Slack Events API benchmark: ingest and end to end, beside a Slack Bolt echo app. Run by hand:

    .venv/bin/python -m bench.slack [--conversations 50] [--per-conversation 10] [--concurrency 32] [--postgres]

For each fake Slack latency (0 and 50 ms per Web API call) it posts the same signed Events API bodies (N people
each DMing the app, each person's messages in order, many people at once) to:
  product  the real server started with ./run.sh (SQLite, built-in model), set up through its API: the Slack
           app's credentials, an agent catch-all (one smith per Slack user), and the workspace installed through
           Slack's OAuth consent the way a browser follows it; every event is verified, stored, run through the
           agent loop and answered by the outbox with chat.postMessage;
  bolt     Slack Bolt for Python's AsyncApp echo (bench/slack_bolt_echo.py) behind uvicorn.
Both answer "You said: <text>". The fake Slack (tests/fakes/slack.py), the product and Bolt each run in their
own process; this one only drives the load. Per server and latency it prints ingest (HTTP statuses, latency,
events/s), end to end (event posted -> its reply received by the fake's chat.postMessage, on the one
monotonic clock of the machine: p50/p95/p99, replies/s), lost and duplicated replies, whether each
conversation's replies came in order, and the CPU per event of the server (all its processes), the fake and
this load driver. Then the issue's targets for the product: end-to-end throughput at 50 ms >= 1.5x Bolt's
with every conversation in order; 0 lost and 0 duplicated; ingest p99 under Slack's 3 s ack deadline at
every latency. Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.drive import (
    Conversations,
    Record,
    checked,
    drive,
    own_process,
    process_cpu,
    ratio,
    report_e2e_target,
    show,
    verdict,
    you_said,
)
from tests.conftest import create_postgres_database
from tests.fakes.slack import (
    CLIENT_ID,
    CLIENT_SECRET,
    SIGNING_SECRET,
    event_envelope,
    message_event,
    numbered_user,
    sign,
)
from tests.integration.conftest import free_port, start_server, stop_server

ACK_DEADLINE_MS = 3000  # Slack retries an event not acknowledged in 3 s (reference/slack.md)
TARGET_RATIO = 1.5  # product end-to-end throughput over Bolt's, at 50 ms
POSTED = Record("/_bench/posted", "posted")  # what the fake's chat.postMessage received


def conversations_of(count: int, per_conversation: int) -> Conversations:
    """Each person's messages as (text, Events API body): the same bytes go to every server."""
    people = []
    for number in range(1, count + 1):
        user_id, dm_id = numbered_user(number)
        messages = []
        for k in range(per_conversation):
            text = f"m-{number}-{k}"
            envelope = event_envelope(message_event(text, channel=dm_id, user=user_id, channel_type="im"),
                                      event_id=f"Ev{number:04d}X{k:05d}")
            messages.append((text, json.dumps(envelope, separators=(",", ":")).encode()))
        people.append(messages)
    return people


@contextlib.contextmanager
def fake_slack(latency_ms: float, users: int, tmp: Path) -> Iterator[tuple[str, int]]:
    """The fake Slack in its own process: its URL and pid. "Allow" is clicked for the install."""
    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.slack", "--port", str(port), "--latency-ms", str(latency_ms),
               "--consent", "allow", "--users", str(users)]
    url = f"http://127.0.0.1:{port}"
    with own_process(command, f"{url}/_bench/posted?since=0", tmp / "fake-slack.log") as process:
        yield url, process.pid


async def set_up_product(url: str, admin_token: str) -> None:
    """Through the product's API, as an admin would: the Slack app, an agent catch-all, then "Add to Slack"
    followed like a browser (one cookie jar): the product's install link, the fake's consent, the callback."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as api:
        await checked(api.put("/v1/tenant/slack", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                        "signing_secret": SIGNING_SECRET}))
        agent = await checked(api.post("/v1/agents", json={"name": "Echo"}))
        await checked(api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                        "kind": "slack"}))
        installer = await checked(api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Installer"}))
        link = await checked(api.post("/v1/deployments", json={"target": {"type": "smith", "id": installer["id"]},
                                                               "kind": "slack", "setup": {"mode": "oauth_install"}}))
    async with httpx.AsyncClient(follow_redirects=True, timeout=30) as browser:
        page = await browser.get(link["install_url"])
    if page.status_code != 200 or "Slack connected" not in page.text:
        raise RuntimeError(f"the install did not complete: {page.status_code} {page.text[:500]}")


async def bench_product(fake_url: str, fake_pid: int, conversations: Conversations,
                        args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    env = {"IC_SLACK_API_URL": f"{fake_url}/api/", "IC_SLACK_OAUTH_URL": f"{fake_url}/oauth/v2/authorize",
           "IC_LOG_LEVEL": "WARNING",
           # --per-conversation may exceed the per-sender limit; a high limit (not 0) keeps its check measured
           "IC_RUNS_PER_SENDER_PER_MINUTE": "1000000"}
    drop = None
    if args.postgres:  # the scale-out shape: PostgreSQL, Reflex state in Redis, GRANIAN_WORKERS processes
        database_url, drop = create_postgres_database("ic_bench")
        env.update({"IC_DATABASE_URL": database_url, "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0",
                    "GRANIAN_WORKERS": str(args.granian_workers)})
    server = start_server(Path(tempfile.mkdtemp(prefix="product-", dir=tmp)), env)
    try:
        await set_up_product(server.url, server.admin_token)
        return await drive(f"{server.url}/v1/slack/webhook/default", conversations, headers_of=sign,
                           concurrency=args.concurrency, fake_url=fake_url, record=POSTED, reply_of=you_said,
                           settle_s=args.settle, cpu_of={"server": process_cpu(server.process.pid),
                                                         "fake": process_cpu(fake_pid), "driver": time.process_time})
    finally:
        stop_server(server)
        if drop:
            drop()


async def bench_bolt(fake_url: str, fake_pid: int, conversations: Conversations,
                     args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "bench.slack_bolt_echo", "--port", str(port), "--api-url", f"{fake_url}/api/",
               "--signing-secret", SIGNING_SECRET]
    with own_process(command, f"{url}/health", tmp / "bolt.log") as process:
        return await drive(f"{url}/slack/events", conversations, headers_of=sign, concurrency=args.concurrency,
                           fake_url=fake_url, record=POSTED, reply_of=you_said, settle_s=args.settle,
                           cpu_of={"server": process_cpu(process.pid), "fake": process_cpu(fake_pid),
                                   "driver": time.process_time})


def report_targets(rounds: dict[float, dict[str, dict[str, Any]]]) -> None:
    products = report_e2e_target(rounds, "bolt", "Bolt", TARGET_RATIO)
    worst = max((r["ingest_p99"] for r in products.values()), default=float("nan"))
    every = ", ".join(f"{r['ingest_p99']:.1f} ms at {latency:g} ms" for latency, r in products.items())
    print(f"ingest p99 {every} (target < {ACK_DEADLINE_MS} ms at every load) -> {verdict(worst < ACK_DEADLINE_MS)}",
          flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50, help="people each DMing the app")
    parser.add_argument("--per-conversation", type=int, default=10, help="messages per person, sent in order")
    parser.add_argument("--concurrency", type=int, default=32, help="posts in flight at once")
    parser.add_argument("--latencies", default="0,50", help="fake Slack Web API latencies in ms, comma-separated")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the last replies")
    parser.add_argument("--postgres", action="store_true", help="run the product on PostgreSQL + Redis")
    parser.add_argument("--granian-workers", type=int, default=2, help="server processes with --postgres")
    parser.add_argument("--only-product", action="store_true", help="skip the Bolt baseline")
    args = parser.parse_args()
    print(f"{args.conversations} conversations x {args.per_conversation} events, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    conversations = conversations_of(args.conversations, args.per_conversation)
    rounds: dict[float, dict[str, dict[str, Any]]] = {}
    logs = Path(tempfile.mkdtemp(prefix="ic-bench-slack-"))  # kept: each process's log, to read after a bad round
    for latency in (float(x) for x in args.latencies.split(",")):
        print(f"\n== fake Slack Web API latency {latency:g} ms ==", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"latency-{latency:g}-", dir=logs))
        results: dict[str, dict[str, Any]] = {}
        with fake_slack(latency, args.conversations, tmp) as (fake_url, fake_pid):
            results["product"] = await bench_product(fake_url, fake_pid, conversations, args, tmp)
            show("product", results["product"], unit="event", fake="fake Slack")
            if not args.only_product:
                results["bolt"] = await bench_bolt(fake_url, fake_pid, conversations, args, tmp)
                show("bolt", results["bolt"], unit="event", fake="fake Slack")
        if "bolt" in results:
            product, bolt = results["product"], results["bolt"]
            print(f"product/Bolt: end-to-end throughput {ratio(product, bolt, 'e2e_rps'):.2f}, ingest throughput"
                  f" {ratio(product, bolt, 'ingest_rps'):.2f}, server CPU per event"
                  f" {ratio(product, bolt, 'cpu_ms_server'):.2f}", flush=True)
        rounds[latency] = results
    report_targets(rounds)
    print(f"logs: {logs}")


if __name__ == "__main__":
    asyncio.run(main())
