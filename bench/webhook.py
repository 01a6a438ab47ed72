"""Telegram webhook benchmark: ingest and end-to-end, beside two baselines. Run by hand:

    .venv/bin/python -m bench.webhook [--chats 50] [--per-chat 20] [--concurrency 32] [--postgres]

For each fake Bot API latency (0 and 50 ms) it posts the same valid updates (each chat's messages in
order, many chats at once) to:
  product  the real server started with ./run.sh (SQLite, built-in model, an agent catch-all); every
           update is verified, stored, run through the agent loop and answered through the outbox;
  bare     an ASGI endpoint that answers 200 at once (the ceiling of the HTTP stack);
  ptb-1 / ptb-16  python-telegram-bot's echo bot fed by a webhook the way its custom-webhook example
           does it (Application with updater None, update_queue.put), concurrent_updates 1 and 16.
It prints ingest (status, latency, throughput) and end to end (update posted -> reply received by
the fake Bot API: p50/p95/p99), lost and duplicated replies, and whether each chat's replies came in
order. Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bench.stats import pct, tree_cpu_seconds
from tests.conftest import create_postgres_database
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, private_message, serve_fake_telegram
from tests.integration.conftest import free_port, start_server, stop_server


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def bare_app() -> Starlette:
    async def ok(_: Request) -> Response:
        return Response('{"ok":true}', media_type="application/json")
    return Starlette(routes=[Route("/hook", ok, methods=["POST"])])


def ptb_app(fake: FakeTelegram, concurrent: int) -> Starlette:
    """python-telegram-bot's custom-webhook pattern: our web server puts updates on its queue."""
    application = (Application.builder().token(FAKE_TOKEN).base_url(f"{fake.url}/bot").updater(None)
                   .concurrent_updates(concurrent).build())

    async def echo(update: Update, _: Any) -> None:
        assert update.message is not None
        await update.message.reply_text(update.message.text or "")

    application.add_handler(MessageHandler(filters.TEXT, echo))

    async def hook(request: Request) -> Response:
        await application.update_queue.put(Update.de_json(await request.json(), application.bot))
        return Response('{"ok":true}', media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        async with application:
            await application.start()
            yield
            await application.stop()

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])], lifespan=lifespan)


async def drive(url: str, headers: dict[str, str], chats: int, per_chat: int, concurrency: int,
                fake: FakeTelegram | None, reply_of: Callable[[str], str], settle_s: float) -> dict[str, Any]:
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    base_chat = 700_000_000 + int(time.time()) % 1_000_000 * 100
    cpu_before = time.process_time()  # this process: the load generator and the fake (and PTB, for its rows)
    start_count = len(fake.sent_messages) if fake else 0

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=120) as client:
        async def chat(index: int) -> None:
            for k in range(per_chat):  # one chat's updates in order, like Telegram
                text = f"m-{index}-{k}"
                update = {"update_id": (base_chat + index) * 1000 + k,
                          **private_message(text, user_id=base_chat + index, first_name=f"U{index}")}
                async with gate:
                    began = time.monotonic()
                    sent_at[text] = began
                    response = await client.post(url, json=update, headers=headers)
                    latencies.append(time.monotonic() - began)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.monotonic()
        await asyncio.gather(*(chat(i) for i in range(chats)))
        ingest_s = time.monotonic() - began
    first_sent = began

    result: dict[str, Any] = {"ingest_rps": len(latencies) / ingest_s, "ingest_p50": pct(latencies, 50),
                              "ingest_p99": pct(latencies, 99), "statuses": statuses}
    if fake is None:
        return result
    expected = {reply_of(text): text for text in sent_at}
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        got = {m["text"] for m in fake.sent_messages[start_count:]}
        if expected.keys() <= got:
            break
        await asyncio.sleep(0.1)
    replies = [m for m in fake.sent_messages[start_count:] if m["text"] in expected]
    seen: dict[str, int] = {}
    e2e = []
    order_ok = True
    last_k: dict[str, int] = {}
    for message in replies:
        seen[message["text"]] = seen.get(message["text"], 0) + 1
        original = expected[message["text"]]
        e2e.append(message["received_at"] - sent_at[original])
        _, chat_index, k = original.split("-")
        if int(k) < last_k.get(chat_index, -1):
            order_ok = False
        last_k[chat_index] = int(k)
    last_reply = max((m["received_at"] for m in replies), default=first_sent + 1e-9)
    result.update(bench_cpu_ms=(time.process_time() - cpu_before) / max(len(sent_at), 1) * 1000,
                  e2e_rps=len(e2e) / max(last_reply - first_sent, 1e-9), e2e_p50=pct(e2e, 50), e2e_p95=pct(e2e, 95),
                  e2e_p99=pct(e2e, 99), lost=len(expected) - len(seen),
                  duplicated=sum(c - 1 for c in seen.values()), in_order=order_ok)
    return result


def show(name: str, r: dict[str, Any]) -> None:
    line = (f"{name:<9} ingest {r['ingest_rps']:7.0f}/s  p50 {r['ingest_p50']:6.1f} ms  p99 {r['ingest_p99']:6.1f} ms"
            f"  statuses {r['statuses']}")
    if "e2e_p50" in r:
        line += (f"\n{'':<9} e2e    {r['e2e_rps']:7.0f}/s  p50 {r['e2e_p50']:6.1f} ms  p95 {r['e2e_p95']:6.1f} ms"
                 f"  p99 {r['e2e_p99']:6.1f} ms  lost {r['lost']}  duplicated {r['duplicated']}"
                 f"  per-chat order {'ok' if r['in_order'] else 'BROKEN'}")
    if "bench_cpu_ms" in r:
        line += (f"\n{'':<9} bench process CPU per update {r['bench_cpu_ms']:.1f} ms"
                 " (load generator and fake Bot API; PTB too in its rows)")
    if "server_cpu_ms" in r:
        line += f"\n{'':<9} server CPU per update {r['server_cpu_ms']:.1f} ms (all its processes)"
    print(line, flush=True)


async def bench_product(fake: FakeTelegram, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ic-bench-"))
    env = {"IC_TELEGRAM_API_URL": fake.url, "IC_PUBLIC_URL": "https://bench.example.com", "IC_LOG_LEVEL": "WARNING",
           # --per-chat may exceed the per-sender limit; a high limit (not 0) keeps its check in the measurement
           "IC_RUNS_PER_SENDER_PER_MINUTE": "1000000"}
    drop = None
    if args.postgres:  # the scale-out shape: PostgreSQL, Reflex state in Redis, GRANIAN_WORKERS processes
        url, drop = create_postgres_database("ic_bench")
        env.update({"IC_DATABASE_URL": url, "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0",
                    "GRANIAN_WORKERS": str(args.granian_workers)})
    server = start_server(tmp, env)
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
            (await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN})).raise_for_status()
            agent = (await api.post("/v1/agents", json={"name": "bench"})).json()
            (await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                     "kind": "telegram"})).raise_for_status()
        secret = str(fake.calls_to("setWebhook")[-1]["secret_token"])
        cpu_before = tree_cpu_seconds(server.process.pid)
        profiler = None
        if args.py_spy:  # sample the server's processes while the load runs (py-spy must be installed)
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.process.pid),
                "--subprocesses", "--rate", "250", "--format", "raw", "-o", args.py_spy,
                stdout=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1.0)  # py-spy attaches
        result = await drive(f"{server.url}/v1/telegram/webhook/default",
                             {"X-Telegram-Bot-Api-Secret-Token": secret}, args.chats, args.per_chat,
                             args.concurrency, fake, lambda text: f"You said: {text}", args.settle)
        # What one update costs the server (all its processes), from the first post to the last reply.
        spent = tree_cpu_seconds(server.process.pid) - cpu_before
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        result["server_cpu_ms"] = spent / (args.chats * args.per_chat) * 1000
        return result
    finally:
        stop_server(server)
        if drop:
            drop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--per-chat", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latencies", default="0,0.05")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the last replies")
    parser.add_argument("--postgres", action="store_true", help="run the product on PostgreSQL + Redis")
    parser.add_argument("--granian-workers", type=int, default=2, help="server processes with --postgres")
    parser.add_argument("--only-product", action="store_true", help="skip the baselines (for profiling)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the product's stacks with py-spy (collapsed format)")
    args = parser.parse_args()
    print(f"{args.chats} chats x {args.per_chat} updates, concurrency {args.concurrency}", flush=True)
    for latency in (float(x) for x in args.latencies.split(",")):
        print(f"\n== fake Bot API latency {latency * 1000:.0f} ms ==", flush=True)
        results = {}
        with serve_fake_telegram(latency) as fake:
            if args.only_product:
                show("product", await bench_product(fake, args))
                continue
            with serve_in_thread(bare_app()) as url:
                results["bare"] = await drive(f"{url}/hook", {}, args.chats, args.per_chat, args.concurrency,
                                              None, str, 0)
            show("bare", results["bare"])
            for concurrent in (1, 16):
                with serve_in_thread(ptb_app(fake, concurrent)) as url:
                    results[f"ptb-{concurrent}"] = await drive(f"{url}/hook", {}, args.chats, args.per_chat,
                                                               args.concurrency, fake, str, args.settle)
                show(f"ptb-{concurrent}", results[f"ptb-{concurrent}"])
            results["product"] = await bench_product(fake, args)
            show("product", results["product"])
        product, ptb16, ptb1 = results["product"], results["ptb-16"], results["ptb-1"]
        print(f"ratios: ingest product/ptb-16 {product['ingest_rps'] / ptb16['ingest_rps']:.2f}, "
              f"product/bare {product['ingest_rps'] / results['bare']['ingest_rps']:.2f}; "
              f"e2e p50 ptb-16/product {ptb16['e2e_p50'] / product['e2e_p50']:.2f}, "
              f"e2e throughput product/ptb-16 {product['e2e_rps'] / ptb16['e2e_rps']:.2f}, "
              f"product/ptb-1 {product['e2e_rps'] / ptb1['e2e_rps']:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
