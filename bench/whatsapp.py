"""WhatsApp webhook benchmark: ingest and end to end, beside a pywa echo bot. Run by hand:

    .venv/bin/python -m bench.whatsapp [--conversations 50] [--per-conversation 10] [--concurrency 32] [--postgres]

For each fake Graph API latency (0 and 50 ms per call) it posts the same webhook bodies in Meta's shape, each
signed with the app secret (``X-Hub-Signature-256``), from N people (distinct wa_ids), each person's messages
in order (the next once the last was answered), many people at once, to:
  product  the real server started with ./run.sh (SQLite, built-in model), set up through its API as an admin
           would: the number connected (``PUT /v1/tenant/whatsapp``: phone number id, access token, app secret)
           and an agent catch-all (one smith per wa_id); every post is verified, stored, run through the agent
           loop and answered by the outbox with a Graph ``POST /{phone_number_id}/messages``;
  pywa     pywa's echo bot on its FastAPI webhook server behind uvicorn (bench/pywa_echo.py), which verifies the
           same signature.
Both answer "You said: <text>". The fake Graph API (``python -m tests.fakes.whatsapp``), the product and pywa
each run in their own process; this one only drives the load and reads what the fake's ``/messages`` accepted
(``GET /_bench/sent``). The product also marks each message read (another ``POST /messages``, with
``"status": "read"``): the fake counts those apart, so only sends with a text or interactive body count as
replies (the read marks' count is printed beside; the product skips some under load). Each body carries the
sender's business-scoped user id (``contacts[].user_id``, which Meta now sends and pywa 4.5 requires); the
product ignores it. pywa handles each update after its 200 with nothing bounding the handlers in flight, and
its Graph client is httpx's default pool (``--pywa-max-connections`` sizes it: see bench/pywa_echo.py).
Per server and latency it prints ingest (HTTP statuses, latency, posts/s), end to end (post -> its reply
received by the fake, on the machine's one monotonic clock: replies/s, p50/p95/p99), lost and duplicated
replies, whether each conversation's replies came in order, and the CPU per message of the server (all its
processes), the fake and this load driver. Then the issue's targets for the product: end-to-end throughput at
50 ms >= 1.5x pywa's with each conversation in order, and 0 lost and 0 duplicated. Figures only: nothing here
asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
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
    you_said,
)
from tests.conftest import create_postgres_database
from tests.fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, GRAPH_VERSION, PHONE_NUMBER_ID, body, sign, text_message
from tests.integration.conftest import free_port, start_server, stop_server

TARGET_RATIO = 1.5  # product end-to-end throughput over pywa's, at 50 ms


def sent_text(message: dict[str, Any]) -> str:
    """A sent message's text: a text message's body, or an interactive one's (the product's buttons)."""
    if message.get("type") == "interactive":
        return str(message["interactive"]["body"]["text"])
    return str(message["text"]["body"])


SENT = Record("/_bench/sent", "sent", sent_text)  # what the fake's /messages accepted (read marks aside)


def wa_id_of(number: int) -> str:
    return f"3069{number:08d}"  # a Greek mobile number's shape: digits, international format


def conversations_of(count: int, per_conversation: int) -> Conversations:
    """Each person's messages as (text, webhook body): the same bytes go to every server."""
    people = []
    for number in range(1, count + 1):
        messages = []
        for k in range(per_conversation):
            text = f"m-{number}-{k}"
            payload = text_message(text, wa_id=wa_id_of(number), name=f"Person {number}",
                                   wamid=f"wamid.HBgLBENCH{number:05d}X{k:05d}")
            value = payload["entry"][0]["changes"][0]["value"]
            user_id = f"GR.{9_000_000_000 + number}"  # the business-scoped user id: country, a dot, digits
            value["contacts"][0]["user_id"] = user_id
            value["messages"][0]["from_user_id"] = user_id
            messages.append((text, body(payload)))
        people.append(messages)
    return people


@contextlib.contextmanager
def fake_graph(latency_ms: float, tmp: Path) -> Iterator[tuple[str, int]]:
    """The fake Graph API in its own process: its root URL (without the version) and pid."""
    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.whatsapp", "--port", str(port), "--latency-ms", str(latency_ms)]
    url = f"http://127.0.0.1:{port}"
    with own_process(command, f"{url}/_bench/sent?since=0", tmp / "fake-graph.log") as process:
        yield url, process.pid


async def read_marks(fake_url: str) -> int:
    async with httpx.AsyncClient(base_url=fake_url, timeout=30) as control:
        return int((await control.get("/_bench/sent", params={"since": 10**9})).json()["read_marks"])


async def set_up_product(url: str, admin_token: str) -> None:
    """Through the product's API, as an admin would: the number, then an agent catch-all."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as api:
        await checked(api.put("/v1/tenant/whatsapp", json={"phone_number_id": PHONE_NUMBER_ID,
                                                           "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}))
        agent = await checked(api.post("/v1/agents", json={"name": "Echo"}))
        await checked(api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                        "kind": "whatsapp"}))


async def measured(url: str, fake_url: str, fake_pid: int, server_pid: int, conversations: Conversations,
                   args: argparse.Namespace) -> dict[str, Any]:
    marks_before = await read_marks(fake_url)
    result = await drive(url, conversations, headers_of=sign, concurrency=args.concurrency, fake_url=fake_url,
                         record=SENT, reply_of=you_said, settle_s=args.settle,
                         cpu_of={"server": process_cpu(server_pid), "fake": process_cpu(fake_pid),
                                 "driver": time.process_time})
    result["read_marks"] = await read_marks(fake_url) - marks_before
    return result


async def bench_product(fake_url: str, fake_pid: int, conversations: Conversations, args: argparse.Namespace,
                        tmp: Path) -> dict[str, Any]:
    env = {"IC_GRAPH_API_URL": f"{fake_url}/{GRAPH_VERSION}", "IC_LOG_LEVEL": "WARNING",
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
        profiler = None
        if args.py_spy:  # sample the server's processes while the load runs (py-spy must be installed)
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.process.pid),
                "--subprocesses", "--rate", "250", "--format", "raw", "-o", args.py_spy,
                stdout=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1.0)  # py-spy attaches
        try:
            return await measured(f"{server.url}/v1/whatsapp/webhook/default", fake_url, fake_pid,
                                  server.process.pid, conversations, args)
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await profiler.wait()
    finally:
        stop_server(server)
        if drop:
            drop()


async def bench_pywa(fake_url: str, fake_pid: int, conversations: Conversations, args: argparse.Namespace,
                     tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "bench.pywa_echo", "--port", str(port),
               "--api-url", f"{fake_url}/{GRAPH_VERSION}"]
    if args.pywa_max_connections:
        command += ["--max-connections", str(args.pywa_max_connections)]
    with own_process(command, f"{url}/health", tmp / "pywa.log") as process:
        return await measured(f"{url}/", fake_url, fake_pid, process.pid, conversations, args)


def report_targets(rounds: dict[float, dict[str, dict[str, Any]]]) -> None:
    report_e2e_target(rounds, "pywa", "pywa", TARGET_RATIO)


def show_round(name: str, result: dict[str, Any]) -> None:
    show(name, result, unit="message", fake="fake Graph")
    # The product skips a read mark while 64 are in flight (channels/whatsapp.py): fewer than messages is expected.
    print(f"{' ' * 8}read marks {result['read_marks']} (not replies)", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50, help="people (wa_ids) each writing to the number")
    parser.add_argument("--per-conversation", type=int, default=10, help="messages per person, sent in order")
    parser.add_argument("--concurrency", type=int, default=32, help="posts in flight at once")
    parser.add_argument("--latencies", default="0,50", help="fake Graph API latencies in ms, comma-separated")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the last replies")
    parser.add_argument("--postgres", action="store_true", help="run the product on PostgreSQL + Redis")
    parser.add_argument("--granian-workers", type=int, default=2, help="server processes with --postgres")
    parser.add_argument("--only-product", action="store_true", help="skip the pywa baseline")
    parser.add_argument("--pywa-max-connections", type=int,
                        help="size pywa's Graph client pool (default: httpx's 100, as pywa makes it)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the product's stacks with py-spy (collapsed format)")
    args = parser.parse_args()
    print(f"{args.conversations} conversations x {args.per_conversation} messages, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    conversations = conversations_of(args.conversations, args.per_conversation)
    rounds: dict[float, dict[str, dict[str, Any]]] = {}
    logs = Path(tempfile.mkdtemp(prefix="ic-bench-whatsapp-"))  # kept: each process's log, to read after a bad round
    for latency in (float(x) for x in args.latencies.split(",")):
        print(f"\n== fake Graph API latency {latency:g} ms ==", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"latency-{latency:g}-", dir=logs))
        results: dict[str, dict[str, Any]] = {}
        with fake_graph(latency, tmp) as (fake_url, fake_pid):
            results["product"] = await bench_product(fake_url, fake_pid, conversations, args, tmp)
            show_round("product", results["product"])
            if not args.only_product:
                results["pywa"] = await bench_pywa(fake_url, fake_pid, conversations, args, tmp)
                show_round("pywa", results["pywa"])
        if "pywa" in results:
            product, pywa = results["product"], results["pywa"]
            print(f"product/pywa: end-to-end throughput {ratio(product, pywa, 'e2e_rps'):.2f}, ingest throughput"
                  f" {ratio(product, pywa, 'ingest_rps'):.2f}, server CPU per message"
                  f" {ratio(product, pywa, 'cpu_ms_server'):.2f}", flush=True)
        rounds[latency] = results
    report_targets(rounds)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min); logs: {logs}")


if __name__ == "__main__":
    asyncio.run(main())
