"""Work wakes its workers when the transaction that made it commits (issue 19 §5, jobs/commit_hooks.py):
never before the commit, never for a rollback, on the subscriber's own loop when the commit ran on another
thread, and with no caller waking anything by hand: a run queued through the API, the console's services
or a schedule fire on the scheduler's thread, and a reply put in the outbox, reach idle workers whose polls
are a minute apart."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import deliveries
from app.services.actors import Actor
from app.services.background import background
from app.services.runtime import Runtime
from jobs import commit_hooks
from jobs.db_thread import DatabaseThread
from jobs.delivery import enqueue_send
from models import OutboxEntry
from models.store import hot
from tests.conftest import bearer

SLOW_POLL_S = 60.0  # far longer than any wait below: only a wake-up at commit can make these pass


class Calls:
    def __init__(self) -> None:
        self.threads: list[int] = []
        self.event = asyncio.Event()

    def __call__(self, values: frozenset[str]) -> None:
        self.threads.append(threading.get_ident())
        self.event.set()


@pytest.fixture
async def calls() -> AsyncIterator[Calls]:  # async: it subscribes from the test's event loop
    found = Calls()
    unsubscribe = commit_hooks.subscribe("test_topic", found)
    yield found
    unsubscribe()


async def test_a_mark_is_announced_once_at_commit_and_dropped_by_a_rollback(runtime: Runtime, calls: Calls) -> None:
    async with runtime.transaction() as session:
        commit_hooks.on_commit(session, "test_topic")
        commit_hooks.on_commit(session, "test_topic")
        assert calls.threads == []  # not before the commit: a worker would find nothing yet
    assert calls.threads == [threading.get_ident()]  # twice marked, once announced
    with contextlib.suppress(RuntimeError):
        async with runtime.transaction() as session:
            commit_hooks.on_commit(session, "test_topic")
            raise RuntimeError("the request failed")
    async with runtime.transaction() as session:
        await session.execute(text("SELECT 1"))  # a later commit must not carry the rolled-back mark
    assert len(calls.threads) == 1


async def test_a_commit_on_another_thread_calls_the_subscriber_on_its_own_loop(runtime: Runtime,
                                                                               calls: Calls) -> None:
    database = DatabaseThread(runtime.settings.database_url, pool_size=1)
    await database.start()
    try:
        async def work(sessions: async_sessionmaker[AsyncSession]) -> int:
            async with sessions() as session, session.begin():
                commit_hooks.on_commit(session, "test_topic")
                await session.execute(text("SELECT 1"))
            return threading.get_ident()

        committed_on = await database.run(work)
        await asyncio.wait_for(calls.event.wait(), 5)
    finally:
        await database.stop()
    assert committed_on != threading.get_ident()
    assert calls.threads == [threading.get_ident()]  # handed over: asyncio objects are not thread-safe


async def test_a_failing_subscriber_neither_fails_the_commit_nor_keeps_the_others(runtime: Runtime,
                                                                                 calls: Calls) -> None:
    def broken(values: frozenset[str]) -> None:
        raise RuntimeError("a listener bug")

    unsubscribe = commit_hooks.subscribe("test_topic", broken)
    try:
        async with runtime.transaction() as session:
            commit_hooks.on_commit(session, "test_topic")
    finally:
        unsubscribe()
    assert len(calls.threads) == 1


async def _smith(api: httpx.AsyncClient, admin_token: str) -> str:
    agent = (await api.post("/v1/agents", json={"name": "A"}, headers=bearer(admin_token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "S"},
                            headers=bearer(admin_token))).json()
    return str(smith["id"])


async def _finished(api: httpx.AsyncClient, admin_token: str, run_id: str, within_s: float = 5.0) -> str:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        status = (await api.get(f"/v1/runs/{run_id}", headers=bearer(admin_token))).json()["status"]
        if status not in ("queued", "running") or asyncio.get_running_loop().time() > deadline:
            return str(status)
        await asyncio.sleep(0.05)


async def test_a_run_queued_through_the_api_wakes_an_idle_worker(api: httpx.AsyncClient, admin_token: str,
                                                                 runtime: Runtime) -> None:
    smith_id = await _smith(api, admin_token)
    async with background(runtime, workers=2, poll_interval_s=SLOW_POLL_S, delivery=False, polling=False,
                          scheduler=False):
        await asyncio.sleep(0.3)  # both workers found nothing and sleep
        created = await api.post(f"/v1/smiths/{smith_id}/runs", headers=bearer(admin_token),
                                 json={"input": [{"role": "user", "content": "hello"}]})
        assert created.status_code == 202, created.text
        assert await _finished(api, admin_token, created.json()["id"]) == "completed"


async def test_a_schedule_fired_now_wakes_an_idle_worker(api: httpx.AsyncClient, admin_token: str,
                                                         runtime: Runtime) -> None:
    smith_id = await _smith(api, admin_token)
    schedule = await api.post(f"/v1/smiths/{smith_id}/schedules", headers=bearer(admin_token),
                              json={"name": "daily", "cron": "0 9 * * *", "timezone": "UTC",
                                    "input": [{"role": "user", "content": "report"}]})
    assert schedule.status_code == 201, schedule.text
    async with background(runtime, workers=1, poll_interval_s=SLOW_POLL_S, delivery=False, polling=False,
                          scheduler=False):
        await asyncio.sleep(0.3)
        fired = await api.post(f"/v1/smiths/{smith_id}/schedules/{schedule.json()['id']}/run_now",
                               headers=bearer(admin_token))
        assert fired.status_code == 202, fired.text
        assert await _finished(api, admin_token, fired.json()["id"]) == "completed"


async def test_an_outbox_entry_and_its_replay_wake_the_deliverer(runtime: Runtime, admin: Actor) -> None:
    async with background(runtime, workers=0, poll_interval_s=SLOW_POLL_S, polling=False, scheduler=False):
        await asyncio.sleep(0.3)  # the deliverer found nothing and sleeps (its retry poll: a minute)
        async with runtime.transaction() as session:
            await enqueue_send(session, project_id=admin.project_id, kind="telegram", address="42",
                               payload={"text": "hi"}, idempotency_key="wake-test")
        entry = await _settled(runtime, "wake-test")
        # No Telegram integration exists: the deliverer took it at once and could not send it.
        assert entry.status == "dead", entry
        async with runtime.transaction() as session:
            replayed = await deliveries.replay(session, actor=admin, delivery_id=entry.id)
            assert (replayed.status, replayed.attempts) == ("pending", 0)
        again = await _settled(runtime, "wake-test")
        assert (again.status, again.attempts) == ("dead", 1)  # taken again at once, not at the next poll


async def _settled(runtime: Runtime, key: str) -> OutboxEntry:
    """The entry once the deliverer handled it (not pending or sending), within 5 s."""
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        async with runtime.transaction() as session:
            found = (await session.execute(
                select(OutboxEntry).where(OutboxEntry.idempotency_key == key))).scalar_one()
            session.expunge(found)
        if found.status not in ("pending", "sending"):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"not handled within 5 s: {found.status}"
        await asyncio.sleep(0.05)


class Claims:
    """Counts the run workers' claim statements as they go to the driver (a prebuilt statement:
    ``models.store.hot.observers`` sees its SQL)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, statement: str, rows: int) -> None:
        if statement.startswith("UPDATE run SET status") and "attempts" in statement:
            self.count += 1


@pytest.fixture
def claims() -> Iterator[Claims]:
    counter = Claims()
    hot.observers.append(counter)
    yield counter
    hot.observers.remove(counter)


async def test_a_steady_trickle_costs_one_claim_per_run(api: httpx.AsyncClient, admin_token: str,
                                                        runtime: Runtime, claims: Claims) -> None:
    """Issue 19 §2: a worker that finished a run goes back to sleep unless a run was announced meanwhile,
    instead of claiming once more to find nothing."""
    smith_id = await _smith(api, admin_token)
    async with background(runtime, workers=2, poll_interval_s=SLOW_POLL_S, delivery=False, polling=False,
                          scheduler=False):
        await asyncio.sleep(0.3)  # each worker's first claim found nothing
        before = claims.count
        for index in range(5):
            created = await api.post(f"/v1/smiths/{smith_id}/runs", headers=bearer(admin_token),
                                     json={"input": [{"role": "user", "content": f"hello {index}"}]})
            assert await _finished(api, admin_token, created.json()["id"]) == "completed"
        assert claims.count - before == 5


async def test_runs_announced_while_every_worker_is_busy_are_still_claimed_at_once(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:
    """One worker, ten runs queued together: the worker hears the first and claims the rest as it finishes
    each, not at its next poll (a minute away)."""
    smith_ids = [await _smith(api, admin_token) for _ in range(10)]  # ten threads: no run waits for another
    async with background(runtime, workers=1, poll_interval_s=SLOW_POLL_S, delivery=False, polling=False,
                          scheduler=False):
        await asyncio.sleep(0.3)
        created = await asyncio.gather(*(
            api.post(f"/v1/smiths/{smith_id}/runs", headers=bearer(admin_token),
                     json={"input": [{"role": "user", "content": "hello"}]}) for smith_id in smith_ids))
        statuses = [await _finished(api, admin_token, c.json()["id"], within_s=10.0) for c in created]
        assert statuses == ["completed"] * 10


async def test_the_deliverer_claims_twice_per_entry_at_a_steady_trickle(runtime: Runtime, admin: Actor) -> None:
    """Issue 19 §2: a claim that took fewer entries than it had room for waits for the next wake-up instead of
    claiming again at once; what is left per entry is its own claim and the look after it was sent (the
    conversation's next entry may be due)."""
    due_queries: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().startswith("SELECT") and "AS outbox_entry_1" in statement:
            due_queries.append(statement)

    async with background(runtime, workers=0, poll_interval_s=SLOW_POLL_S, polling=False, scheduler=False):
        await asyncio.sleep(0.3)  # the first claim found nothing
        event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            for index in range(5):
                async with runtime.transaction() as session:
                    await enqueue_send(session, project_id=admin.project_id, kind="telegram", address=str(index),
                                       payload={"text": "hi"}, idempotency_key=f"trickle-{index}")
                await _settled(runtime, f"trickle-{index}")
                await asyncio.sleep(0.05)  # the look after the send is done
        finally:
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
    assert len(due_queries) == 10
