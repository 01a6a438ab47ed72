"""Telegram webhook benchmark: ingest and end to end, beside three baselines, each in its own process. Run by hand:

    .venv/bin/python -m bench.webhook [--chats 50] [--per-chat 20] [--concurrency 32] [--postgres]

For each fake Bot API latency (0 and 50 ms per call) it posts the same valid updates (each chat's messages in
order, many chats at once) to:
  bare     an endpoint that answers 200 at once (bench/bare_endpoint.py: the ceiling of the HTTP stack);
  ptb-1 / ptb-16  python-telegram-bot's echo bot fed by a webhook the way its custom-webhook example does it
           (bench/ptb_echo.py: Application with updater None, update_queue.put), concurrent_updates 1 and 16;
  product  the real server started with ./run.sh (SQLite, built-in model, an agent catch-all); every update is
           verified, stored, run through the agent loop and answered through the outbox.
The fake Bot API (``python -m tests.fakes.telegram``), each baseline and the product run in their own
processes; this one only drives the load and reads what the fake's sendMessage received (``/_bench/sent``).
Per server and latency it prints ingest (HTTP statuses, latency, updates/s), end to end (update posted -> its
reply received by the fake, on the machine's one monotonic clock: replies/s, p50/p95/p99), lost and
duplicated replies, whether each chat's replies came in order, and the CPU per update of the server (all its
processes), the fake and this load driver. Then each server's figures against ptb-16's and ptb-1's, and the
issue's targets for the product (end to end at 50 ms >= 1.5x ptb-16 with each chat in order, nothing lost or
duplicated; server CPU per update <= 2x ptb-16's). Before the product's burst: its CPU with no traffic and at
steady rates (bench/steady.py; targets: idle under 1% of a core, CPU per update at 50/s no higher than in the
burst). Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.drive import Conversations, Record, drive, own_process, process_cpu, show, verdict, you_said
from bench.steady import idle_cpu, paced, show_paced
from tests.conftest import create_postgres_database
from tests.fakes.telegram import FAKE_TOKEN, private_message
from tests.integration.conftest import free_port, start_server, stop_server

TARGET_E2E_RATIO = 1.5  # product end-to-end throughput over ptb-16's, at 50 ms
TARGET_CPU_RATIO = 2.0  # product server CPU per update at most this many times ptb-16's
BASELINES = ("ptb-16", "ptb-1")  # what every server is compared against, in this order

Chats = Conversations
SENT = Record("/_bench/sent", "sent")  # what the fake's sendMessage received


def chats_of(count: int, per_chat: int, series: int = 0) -> Chats:
    """Each chat's updates as (text, JSON body): the same bytes go to every server. Another ``series`` gives other
    chats (and texts), so a steady round's updates are never taken for the burst's."""
    base_chat = 700_000_000 + int(time.time()) % 10_000 * 100_000 + series * 10_000
    chats = []
    for index in range(count):
        updates = []
        for k in range(per_chat):
            text = f"m{series}-{index}-{k}"
            update = {"update_id": (base_chat + index) * 1000 + k,
                      **private_message(text, user_id=base_chat + index, first_name=f"U{index}")}
            updates.append((text, json.dumps(update, separators=(",", ":")).encode()))
        chats.append(updates)
    return chats


def ratio(results: dict[str, dict[str, Any]], name: str, baseline: str, key: str) -> float:
    mine, theirs = results.get(name, {}).get(key), results.get(baseline, {}).get(key)
    return float(mine) / theirs if mine is not None and theirs else float("nan")


def show_ratios(results: dict[str, dict[str, Any]]) -> None:
    columns = (("ingest/s", "ingest_rps"), ("e2e/s", "e2e_rps"), ("server CPU/update", "cpu_ms_server"))
    print((f"against {' | '.join(BASELINES):<17}" + "".join(f"{title:<19}" for title, _ in columns)).rstrip())
    for name in ("product", "bare", *BASELINES):
        cells = []
        for _, key in columns:
            figures = [ratio(results, name, baseline, key) for baseline in BASELINES]
            cells.append("-" if all(f != f for f in figures) else " | ".join(f"{f:.2f}" for f in figures))
        print((f"  {name:<23}" + "".join(f"{cell:<19}" for cell in cells)).rstrip(), flush=True)


def report_targets(rounds: dict[float, dict[str, dict[str, Any]]]) -> None:
    print("\n== targets (product against ptb-16) ==")
    at_50 = rounds.get(50.0, {})
    if "ptb-16" in at_50:
        e2e, product = ratio(at_50, "product", "ptb-16", "e2e_rps"), at_50["product"]
        met = e2e >= TARGET_E2E_RATIO and product["in_order"]
        print(f"end-to-end throughput at 50 ms: {e2e:.2f}x (target >= {TARGET_E2E_RATIO}x), per-chat order "
              f"{'kept' if product['in_order'] else 'BROKEN'} -> {verdict(met)}")
    else:
        print("end-to-end throughput at 50 ms: not measured (needs latency 50 and ptb-16)")
    for latency, results in rounds.items():
        product = results["product"]
        if "idle_pct" in product:
            print(f"idle server CPU at {latency:g} ms: {product['idle_pct']:.2f}% of a core (target < 1%) -> "
                  f"{verdict(product['idle_pct'] < 1.0)}")
        for steady in product.get("steady", []):
            burst = product["cpu_ms_server"]
            print(f"CPU per update at a steady {steady['rate']:g}/s, {latency:g} ms: {steady['cpu_ms_server']:.2f} ms "
                  f"against {burst:.2f} ms in the burst = {steady['cpu_ms_server'] / burst:.2f}x (target <= 1x at "
                  f"50/s) -> {verdict(steady['cpu_ms_server'] <= burst) if steady['rate'] == 50 else 'figure only'}")
    products = [results["product"] for results in rounds.values()]
    lost, duplicated = (sum(r[key] for r in products) for key in ("lost", "duplicated"))
    print(f"lost {lost}, duplicated {duplicated} (target 0 and 0) -> {verdict(lost == 0 and duplicated == 0)}")
    cpu = {latency: ratio(results, "product", "ptb-16", "cpu_ms_server") for latency, results in rounds.items()}
    if all(figure == figure for figure in cpu.values()):
        every = ", ".join(f"{figure:.2f}x at {latency:g} ms" for latency, figure in cpu.items())
        print(f"server CPU per update: {every} (target <= {TARGET_CPU_RATIO}x) -> "
              f"{verdict(max(cpu.values()) <= TARGET_CPU_RATIO)}", flush=True)


async def bench_product(fake_url: str, fake_pid: int, chats: Chats, args: argparse.Namespace,
                        tmp: Path) -> dict[str, Any]:
    env = {"IC_TELEGRAM_API_URL": fake_url, "IC_PUBLIC_URL": "https://bench.example.com", "IC_LOG_LEVEL": "WARNING",
           # --per-chat may exceed the per-sender limit; a high limit (not 0) keeps its check in the measurement
           "IC_RUNS_PER_SENDER_PER_MINUTE": "1000000"}
    drop = None
    if args.postgres:  # the scale-out shape: PostgreSQL, Reflex state in Redis, GRANIAN_WORKERS processes
        url, drop = create_postgres_database("ic_bench")
        env.update({"IC_DATABASE_URL": url, "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0",
                    "GRANIAN_WORKERS": str(args.granian_workers)})
    server = start_server(Path(tempfile.mkdtemp(prefix="product-", dir=tmp)), env)
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
            (await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN})).raise_for_status()
            agent = (await api.post("/v1/agents", json={"name": "bench"})).json()
            (await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                     "kind": "telegram"})).raise_for_status()
        async with httpx.AsyncClient(base_url=fake_url, timeout=30) as control:  # what the product gave setWebhook
            secret = str((await control.get("/_bench/sent", params={"since": 10**9})).json()["webhook"]["secret_token"])
        profiler = None
        if args.py_spy:  # sample the server's processes while the load runs (py-spy must be installed)
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.process.pid),
                "--subprocesses", "--rate", "250", "--format", "raw", "-o", args.py_spy,
                stdout=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1.0)  # py-spy attaches
        try:
            quiet = await measure_quiet(server.process.pid, fake_url, secret, server.url, args)
            result = await drive(f"{server.url}/v1/telegram/webhook/default", chats,
                               headers_of=lambda _: {"X-Telegram-Bot-Api-Secret-Token": secret},
                               concurrency=args.concurrency, fake_url=fake_url, record=SENT, reply_of=you_said,
                               settle_s=args.settle, cpu_of={"server": process_cpu(server.process.pid),
                                                             "fake": process_cpu(fake_pid),
                                                             "driver": time.process_time})
            return {**result, **quiet}
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await profiler.wait()
    finally:
        stop_server(server)
        if drop:
            drop()


async def measure_quiet(pid: int, fake_url: str, secret: str, server_url: str,
                        args: argparse.Namespace) -> dict[str, Any]:
    """Before the burst: the server's CPU with no traffic, then at each steady rate (issue 19 §2)."""
    quiet: dict[str, Any] = {"steady": []}
    if args.idle_seconds > 0:
        await asyncio.sleep(5.0)  # the start's own work (the first channel build, the leader's first rounds) ends
        quiet["idle_pct"] = await idle_cpu(process_cpu(pid), args.idle_seconds)
        print(f"  idle: {quiet['idle_pct']:.2f}% of a core over {args.idle_seconds:g} s", flush=True)
    for series, rate in enumerate((float(x) for x in args.steady.split(",") if x), start=1):
        chats = chats_of(max(1, round(rate * args.steady_seconds / args.per_chat)), args.per_chat, series)
        result = await paced(f"{server_url}/v1/telegram/webhook/default", chats, rate=rate,
                             headers_of=lambda _: {"X-Telegram-Bot-Api-Secret-Token": secret}, fake_url=fake_url,
                             record=SENT, reply_of=you_said, settle_s=args.settle, cpu_of=process_cpu(pid))
        show_paced(result)
        quiet["steady"].append(result)
    return quiet


async def bench_baseline(name: str, fake_url: str, fake_pid: int, chats: Chats, args: argparse.Namespace,
                         tmp: Path) -> dict[str, Any]:
    """``bare`` or ``ptb-N`` (N concurrent updates), in its own process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if name == "bare":
        command, reply_of = [sys.executable, "-m", "bench.bare_endpoint", "--port", str(port)], None
    else:
        command = [sys.executable, "-m", "bench.ptb_echo", "--port", str(port), "--api-url", fake_url,
                   "--concurrent-updates", name.removeprefix("ptb-")]
        reply_of = str
    with own_process(command, f"{url}/health", tmp / f"{name}.log") as process:
        return await drive(f"{url}/hook", chats, headers_of=lambda _: {}, concurrency=args.concurrency,
                           fake_url=fake_url, record=SENT, reply_of=reply_of, settle_s=args.settle,
                           cpu_of={"server": process_cpu(process.pid), "fake": process_cpu(fake_pid),
                                   "driver": time.process_time})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--per-chat", type=int, default=20, help="updates per chat, sent in order")
    parser.add_argument("--concurrency", type=int, default=32, help="posts in flight at once")
    parser.add_argument("--latencies", default="0,50", help="fake Bot API latencies in ms, comma-separated")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the last replies")
    parser.add_argument("--postgres", action="store_true", help="run the product on PostgreSQL + Redis")
    parser.add_argument("--granian-workers", type=int, default=2, help="server processes with --postgres")
    parser.add_argument("--only-product", action="store_true", help="skip the baselines (for profiling)")
    parser.add_argument("--steady", default="10,50", help="steady rates (updates/s) before the burst; '' for none")
    parser.add_argument("--steady-seconds", type=float, default=20.0, help="how long each steady rate lasts")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="CPU sampled with no traffic (0: skip)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the product's stacks with py-spy (collapsed format)")
    args = parser.parse_args()
    print(f"{args.chats} chats x {args.per_chat} updates, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    chats = chats_of(args.chats, args.per_chat)
    rounds: dict[float, dict[str, dict[str, Any]]] = {}
    logs = Path(tempfile.mkdtemp(prefix="ic-bench-webhook-"))  # kept: each process's log, to read after a bad round
    for latency in (float(x) for x in args.latencies.split(",")):
        print(f"\n== fake Bot API latency {latency:g} ms ==", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"latency-{latency:g}-", dir=logs))
        results: dict[str, dict[str, Any]] = {}
        fake_port = free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        fake_command = [sys.executable, "-m", "tests.fakes.telegram", "--port", str(fake_port),
                        "--latency-ms", str(latency)]
        with own_process(fake_command, f"{fake_url}/_bench/sent?since=0", tmp / "fake-telegram.log") as fake:
            for name in () if args.only_product else ("bare", "ptb-1", "ptb-16"):
                results[name] = await bench_baseline(name, fake_url, fake.pid, chats, args, tmp)
                show(name, results[name], unit="update", fake="fake Bot API", conversation="chat")
            results["product"] = await bench_product(fake_url, fake.pid, chats, args, tmp)
            show("product", results["product"], unit="update", fake="fake Bot API", conversation="chat")
        if not args.only_product:
            show_ratios(results)
        rounds[latency] = results
    if not args.only_product:
        report_targets(rounds)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min); logs: {logs}")


if __name__ == "__main__":
    asyncio.run(main())
