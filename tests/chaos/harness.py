"""Chaos on PostgreSQL (issue 15 §3): server processes and workers SIGKILLed at random while people write.

    .venv/bin/python -m tests.chaos.harness                 # the full form: 500 messages, 50 chats, >= 25 kills
    .venv/bin/python -m tests.chaos.harness --messages 120 --conversations 12 --kills 8   # what ./test.sh runs

Three ``python -m app.headless`` servers and two ``python -m app.worker`` processes share one fresh PostgreSQL
database; each server also runs workers and the outbox, as ``./run.sh`` does. The fake Bot API runs in a
process of its own (``python -m tests.fakes.telegram``). This process plays Telegram: each chat's messages
go in order, each to a random server, and a message whose post did not end in 200 (the server died under
it, or refused it) is posted again, to another server, until one answers 200, as Telegram retries a webhook.
Meanwhile a random process is SIGKILLed every ``--interval`` seconds (randomised) and started again at
once, until ``--kills`` kills happened and every message was accepted. Leases are short
(``IC_RUN_LEASE_SECONDS``, ``IC_SEND_LEASE_SECONDS``) so that work a killed process held is taken over
within seconds.

Then it waits for the replies and prints: inbound lost (accepted messages with no inbound row), runs
twice (messages with more than one run), replies twice, chats whose replies came out of order, missing
replies, and ``unknown`` deliveries (caught mid-send by a kill: never resent, since the provider may have
delivered them; each may account for one missing reply). ``run()`` returns the figures for the test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import create_postgres_database
from tests.fakes.telegram import FAKE_TOKEN, private_message

ROOT = Path(__file__).resolve().parents[2]
START_S = 60.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    """One process of the product (or the fake), restartable on the same port."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    ready_url: str | None = None  # polled until it answers; workers print "worker ready" instead
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"{self.name}.{self.starts}.log").open("wb")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log_text(self) -> str:
        return (self.log_dir / f"{self.name}.{self.starts}.log").read_text(errors="replace")

    async def ready(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_text()[-3000:]}")
            if self.ready_url is None:
                if "worker ready" in self.log_text():
                    return
            else:
                try:
                    async with httpx.AsyncClient(timeout=1) as client:
                        if (await client.get(self.ready_url)).status_code == 200:
                            return
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {START_S:.0f} s:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Figures:
    messages: int
    conversations: int
    kills: int
    accepted: int = 0
    post_attempts: int = 0
    inbound_rows: int = 0
    inbound_lost: int = 0
    runs: int = 0
    runs_twice: int = 0
    replies: int = 0
    replies_twice: int = 0
    missing_replies: int = 0
    out_of_order: int = 0
    unknown_deliveries: int = 0
    dead_deliveries: int = 0
    seconds: float = 0.0
    killed: Counter[str] = field(default_factory=Counter)

    def report(self) -> str:
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(self.killed.items()))
        return "\n".join([
            f"chaos on PostgreSQL: {self.messages} messages over {self.conversations} chats, {self.kills} SIGKILLs "
            f"({kinds}), {self.seconds:.0f} s",
            f"  accepted {self.accepted} of {self.messages} (after {self.post_attempts} posts, retries included)",
            f"  inbound lost      {self.inbound_lost}   (inbound rows {self.inbound_rows})",
            f"  runs twice        {self.runs_twice}   (runs {self.runs})",
            f"  replies twice     {self.replies_twice}   (replies {self.replies})",
            f"  chats out of order {self.out_of_order}",
            f"  missing replies   {self.missing_replies}   (unknown deliveries {self.unknown_deliveries}, "
            f"dead {self.dead_deliveries})",
        ])


async def _post_until_accepted(urls: list[str], body: bytes, headers: dict[str, str], figures: Figures,
                               client: httpx.AsyncClient) -> None:
    while True:
        figures.post_attempts += 1
        try:
            answer = await client.post(random.choice(urls), content=body, headers=headers)
            if answer.status_code == 200:
                figures.accepted += 1
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05 + random.random() * 0.2)


async def run(*, messages: int = 500, conversations: int = 50, kills: int = 25, interval_s: float = 2.0,
              settle_s: float = 120.0, tmp: Path | None = None, seed: int | None = None) -> Figures:
    rng = random.Random(seed)
    tmp = tmp or Path(tempfile.mkdtemp(prefix="chaos-"))
    url, drop = create_postgres_database("ic_chaos")
    fake_port = _free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    admin_token = f"ic_admin_{secrets.token_urlsafe(24)}"
    env = {**os.environ, "IC_DATABASE_URL": url, "IC_TELEGRAM_API_URL": fake_url, "IC_DATA_DIR": str(tmp / "data"),
           "IC_PUBLIC_URL": "https://chaos.example.com", "IC_ADMIN_TOKEN": admin_token, "IC_ADMIN_PASSWORD": "",
           "IC_LOG_LEVEL": "WARNING", "IC_RUNS_PER_SENDER_PER_MINUTE": "1000000",
           "IC_RUN_LEASE_SECONDS": "4", "IC_SEND_LEASE_SECONDS": "4"}
    python = sys.executable
    fake = Node("fake-telegram", [python, "-m", "tests.fakes.telegram", "--port", str(fake_port)], env, tmp,
                ready_url=f"{fake_url}/_bench/sent")
    ports = [_free_port() for _ in range(3)]
    servers = [Node(f"server-{n}", [python, "-m", "app.headless", "--host", "127.0.0.1", "--port", str(port)], env,
                    tmp, ready_url=f"http://127.0.0.1:{port}/v1/health") for n, port in enumerate(ports)]
    workers = [Node(f"worker-{n}", [python, "-m", "app.worker"], env, tmp) for n in range(2)]
    victims = servers + workers
    figures = Figures(messages=messages, conversations=conversations, kills=0)
    started = time.monotonic()
    try:
        migrate = await asyncio.create_subprocess_exec(python, "-m", "app.bootstrap", cwd=ROOT, env=env,
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert await migrate.wait() == 0, "python -m app.bootstrap failed"
        fake.start()
        await fake.ready()
        for node in victims:
            node.start()
        await asyncio.gather(*(node.ready() for node in victims))
        secret = await _connect(f"http://127.0.0.1:{ports[0]}", admin_token, fake_url)
        webhooks = [f"http://127.0.0.1:{port}/v1/telegram/webhook/default" for port in ports]
        chats = _chats(messages, conversations)
        headers = {"content-type": "application/json", SECRET_HEADER: secret}
        posting_done = asyncio.Event()

        # Spread each chat's messages over the time the kills take, so that processes die mid-stream.
        gap_s = kills * interval_s / max(1, messages // conversations)

        async def speak(updates: list[tuple[str, bytes]], client: httpx.AsyncClient) -> None:
            for _, body in updates:
                await _post_until_accepted(webhooks, body, headers, figures, client)
                await asyncio.sleep(gap_s * (0.5 + rng.random()))

        async def drive() -> None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)  # a dead server's sockets go
            async with httpx.AsyncClient(timeout=10, limits=limits) as client:
                await asyncio.gather(*(speak(updates, client) for updates in chats.values()))
            posting_done.set()

        async def chaos() -> None:
            while figures.kills < kills or not posting_done.is_set():
                await asyncio.sleep(interval_s * (0.5 + rng.random()))
                victim = rng.choice(victims)
                victim.kill()
                figures.kills += 1
                figures.killed[victim.name.split("-")[0]] += 1
                victim.start()
                await victim.ready()

        await asyncio.gather(drive(), chaos())
        expected = {chat: [f"You said: {text}" for text, _ in updates] for chat, updates in chats.items()}
        await _settle(fake_url, expected, settle_s)
        await _count(figures, url, fake_url, expected)
    finally:
        figures.seconds = time.monotonic() - started
        for node in [*victims, fake]:
            node.stop()
        drop()
    return figures


def _chats(messages: int, conversations: int) -> dict[int, list[tuple[str, bytes]]]:
    """Each chat's updates in order, as (text, body); update ids are unique across the run."""
    base = 800_000_000 + int(time.time()) % 1_000_000 * 100
    chats: dict[int, list[tuple[str, bytes]]] = {}
    for n in range(messages):
        chat = base + n % conversations
        text = f"c{n % conversations}-m{n // conversations}"
        update = private_message(text, user_id=chat, first_name=f"P{n % conversations}", message_id=n + 1,
                                 update_id=900_000_000 + n)
        chats.setdefault(chat, []).append((text, json.dumps(update).encode()))
    return chats


async def _connect(server: str, admin_token: str, fake_url: str) -> str:
    """The Telegram integration and an agent catch-all (a smith per chat); the webhook's secret token."""
    async with httpx.AsyncClient(base_url=server, headers={"Authorization": f"Bearer {admin_token}"},
                                 timeout=30) as api:
        (await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN})).raise_for_status()
        agent = (await api.post("/v1/agents", json={"name": "chaos"})).json()
        (await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                 "kind": "telegram"})).raise_for_status()
    async with httpx.AsyncClient(timeout=10) as client:
        return str((await client.get(f"{fake_url}/_bench/sent", params={"since": 10**9})).json()
                   ["webhook"]["secret_token"])


async def _sent(fake_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        return list((await client.get(f"{fake_url}/_bench/sent")).json()["sent"])


async def _settle(fake_url: str, expected: dict[int, list[str]], settle_s: float) -> None:
    """Until every reply arrived, or nothing new arrived for a while past the leases (unknown ones never
    will), or the deadline."""
    want = sum(len(replies) for replies in expected.values())
    deadline, last_count, quiet_since = time.monotonic() + settle_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(await _sent(fake_url))
        if count >= want:
            return
        if count != last_count:
            last_count, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > 15:
            return
        await asyncio.sleep(0.5)


async def _count(figures: Figures, database_url: str, fake_url: str, expected: dict[int, list[str]]) -> None:
    sent = await _sent(fake_url)
    got: dict[int, list[str]] = {}
    for message in sent:
        got.setdefault(int(message["chat_id"]), []).append(str(message["text"]))
    counted = Counter((chat, reply) for chat, replies in got.items() for reply in replies)
    figures.replies = sum(1 for (chat, _) in counted if chat in expected)
    figures.replies_twice = sum(n - 1 for n in counted.values() if n > 1)
    for chat, replies in expected.items():
        received = [reply for reply in got.get(chat, []) if reply in replies]
        figures.missing_replies += len(set(replies) - set(received))
        order = [replies.index(reply) for reply in dict.fromkeys(received)]
        figures.out_of_order += order != sorted(order)
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            figures.inbound_rows = db.execute(text("SELECT count(*) FROM inbound_delivery")).scalar_one()
            figures.runs = db.execute(text("SELECT count(*) FROM run")).scalar_one()
            # One run per message: the messages table holds each run's user input once.
            per_message = db.execute(text(
                "SELECT m.content, count(DISTINCT m.run_id) FROM message m WHERE m.role = 'user' "
                "GROUP BY m.content HAVING count(DISTINCT m.run_id) > 1")).all()
            figures.runs_twice = len(per_message)
            outcomes = dict(db.execute(text("SELECT status, count(*) FROM outbox_entry GROUP BY status")).all())
    finally:
        engine.dispose()
    figures.inbound_lost = max(0, figures.accepted - figures.inbound_rows)
    figures.unknown_deliveries = int(outcomes.get("unknown", 0))
    figures.dead_deliveries = int(outcomes.get("dead", 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.harness", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--kills", type=int, default=25, help="at least this many SIGKILLs")
    parser.add_argument("--interval", type=float, default=2.0, help="mean seconds between kills")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(messages=args.messages, conversations=args.conversations, kills=args.kills,
                              interval_s=args.interval, seed=args.seed))
    print(figures.report())


if __name__ == "__main__":
    main()
