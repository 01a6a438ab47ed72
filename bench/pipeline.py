"""Where an inbound Telegram message's CPU goes, stage by stage, in one process. Run by hand:

    .venv/bin/python -m bench.pipeline [--updates 400] [--chats 40] [--profile ingest|runs|send]

No HTTP server: the stages are driven through the same services the server uses, one after the
other, so each one's cost is measured alone (bench/webhook.py measures them together, over HTTP):
  ingest  ``app.services.inbound.receive_webhook`` for every update (verify, store, route), 32 at a time
  runs    the run workers (``app.services.background``, outbox off) until every run finished
  send    the outbox deliverer until every reply reached the fake Bot API (a separate process, so its
          CPU is not counted here)
Per stage it prints CPU time per update, SQL statements and transactions per update, and
wall-clock throughput. ``--profile STAGE`` adds the top functions of that stage (cProfile).
Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import dataclasses
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select

from app.api import build_api
from app.bootstrap import start
from app.services.background import background
from app.services.channel_hub import get_hub
from app.services.inbound import receive_webhook
from app.services.runtime import Runtime, set_runtime
from app.settings import Settings
from channels.types import RawRequest
from jobs.runstate import TERMINAL
from models import Integration, OutboxEntry, Run
from models.db import migrate
from models.store import hot
from tests.fakes.telegram import FAKE_TOKEN, private_message

ADMIN = "ic_admin_bench_pipeline_token_0123456789"
FAKE_SERVER = ("import sys, time\nfrom tests.fakes.telegram import serve_fake_telegram\n"
               "with serve_fake_telegram(0.0) as fake:\n    print(fake.url, flush=True)\n    time.sleep(3600)\n")


class Counter:
    """SQL statements and transactions issued through the engine, and hot statements (models/store/hot.py,
    which bypass the engine's events; an executemany counts once)."""

    def __init__(self, runtime: Runtime) -> None:
        self.statements = 0
        self.transactions = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        event.listen(runtime.engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(runtime.engine.sync_engine, "commit", self._commit)
        hot.observers.append(self._hot)

    def _statement(self, *args: Any) -> None:
        self.statements += 1
        self.kinds[" ".join(str(args[2]).split())[:90]] += 1

    def _hot(self, sql: str, _rows: int) -> None:
        self.statements += 1
        self.kinds["(hot) " + " ".join(sql.split())[:84]] += 1

    def _commit(self, *_: Any) -> None:
        self.transactions += 1

    def snapshot(self) -> tuple[int, int]:
        return self.statements, self.transactions


@dataclasses.dataclass
class Stage:
    name: str
    count: int
    cpu_s: float
    wall_s: float
    statements: int
    transactions: int

    def show(self) -> None:
        print(f"{self.name:<7} cpu/update {self.cpu_s / self.count * 1000:6.2f} ms   "
              f"statements/update {self.statements / self.count:5.1f}   "
              f"transactions/update {self.transactions / self.count:4.2f}   "
              f"{self.count / self.wall_s:6.0f}/s wall", flush=True)


async def measure(name: str, count: int, counter: Counter, profile: bool, work: Any) -> Stage:
    profiler = cProfile.Profile() if profile else None
    before = counter.snapshot()
    cpu, wall = time.process_time(), time.monotonic()
    if profiler:
        profiler.enable()
    await work()
    if profiler:
        profiler.disable()
    stage = Stage(name, count, time.process_time() - cpu, time.monotonic() - wall,
                  counter.statements - before[0], counter.transactions - before[1])
    stage.show()
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    return stage


async def wait_for(runtime: Runtime, statement: Any, want: int, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        async with runtime.sessions() as session:
            if (await session.execute(statement)).scalar_one() >= want:
                return
        await asyncio.sleep(0.05)
    raise SystemExit(f"timed out waiting for {want}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=400)
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", choices=("ingest", "runs", "send"), default=None)
    args = parser.parse_args()

    fake = subprocess.Popen([sys.executable, "-c", FAKE_SERVER], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
    try:
        fake_url = fake.stdout.readline().strip() if fake.stdout else ""
        tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        url = f"sqlite+aiosqlite:///{tmp}/ingram.db"
        await asyncio.to_thread(migrate, url, tmp)
        settings = dataclasses.replace(Settings.from_env(), data_dir=tmp, database_url=url, secret_keys=("bench",),
                                       admin_token=ADMIN, admin_password="", telegram_api_url=fake_url,
                                       public_url="https://bench.example.com", log_level="WARNING")
        runtime = Runtime.build(settings)
        set_runtime(runtime)
        await start(runtime)
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://bench",
                                     headers=headers) as api:
            (await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN})).raise_for_status()
            agent = (await api.post("/v1/agents", json={"name": "bench"})).json()
            (await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                     "kind": "telegram"})).raise_for_status()
        secret_token = await _webhook_secret(runtime)
        counter = Counter(runtime)
        per_chat = args.updates // args.chats
        bodies = [json.dumps({"update_id": 10_000 + chat * 1000 + k,
                              **private_message(f"m-{chat}-{k}", user_id=900_000 + chat)}).encode()
                  for k in range(per_chat) for chat in range(args.chats)]
        total = len(bodies)
        gate = asyncio.Semaphore(args.concurrency)

        async def post(body: bytes) -> None:
            async with gate:
                raw = RawRequest(method="POST", path="/v1/telegram/webhook/default", body=body, query={},
                                 headers={"x-telegram-bot-api-secret-token": secret_token,
                                          "content-type": "application/json"})
                await receive_webhook(runtime, kind="telegram", tenant="default", raw=raw)

        async def ingest() -> None:
            await asyncio.gather(*(post(b) for b in bodies))

        async def runs() -> None:
            async with background(runtime, delivery=False, polling=False, scheduler=False):
                await wait_for(runtime, select(func.count()).select_from(Run).where(Run.status.in_(TERMINAL)), total)

        async def send() -> None:
            async with background(runtime, workers=0, polling=False, scheduler=False):
                await wait_for(runtime, select(func.count()).select_from(OutboxEntry)
                               .where(OutboxEntry.status == "sent"), total)

        print(f"{total} updates from {args.chats} chats, SQLite, fake Bot API in another process", flush=True)
        for name, work in (("ingest", ingest), ("runs", runs), ("send", send)):
            await measure(name, total, counter, args.profile == name, work)
        print("\nstatements by kind (all stages):")
        for text, count in counter.kinds.most_common(30):
            print(f"{count / total:6.2f}/update  {text}")
        set_runtime(None)
        await runtime.close()
    finally:
        fake.terminate()


async def _webhook_secret(runtime: Runtime) -> str:
    """The secret the product registered with setWebhook, read back through its own channel."""
    async with runtime.sessions() as session:
        integration = (await session.execute(select(Integration))).scalar_one()
    channel = await get_hub(runtime).for_integration(integration)
    return str(channel.secrets.webhook_secret)  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
