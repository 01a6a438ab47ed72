"""Waiters are woken by a run's committed change, not a timer (issue 19 §1, jobs/run_signals.py): heard
after the commit and never for a rollback; on PostgreSQL also from another connection (another process)
through LISTEN/NOTIFY. A waiter still times out at its limit, and a lost notification delays it by at most
the safety-net poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlalchemy import text

from app.services.mcp import RunWatcher, watcher_for
from app.services.runtime import Runtime
from jobs import run_signals
from tests.conftest import bearer


class Heard:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.event = asyncio.Event()

    def __call__(self, run_ids: frozenset[str]) -> None:
        self.ids.extend(sorted(run_ids))
        self.event.set()


@pytest.fixture
def heard() -> Iterator[Heard]:
    found = Heard()
    unsubscribe = run_signals.subscribe(found)
    yield found
    unsubscribe()


async def test_a_change_is_heard_once_committed_and_never_when_rolled_back(runtime: Runtime, heard: Heard) -> None:
    async with runtime.transaction() as session:
        await run_signals.note_changed(session, "run_committed")
        assert heard.ids == []  # not before the commit: a waiter would read the old row
    assert heard.ids == ["run_committed"]
    with contextlib.suppress(RuntimeError):
        async with runtime.transaction() as session:
            await run_signals.note_changed(session, "run_rolled_back")
            raise RuntimeError("the step failed")
    async with runtime.transaction() as session:
        await session.execute(text("SELECT 1"))  # a later commit must not carry the rolled-back id
    assert heard.ids == ["run_committed"]


async def _notify_from_another_process_until_heard(runtime: Runtime, heard: Heard, payload: str) -> None:
    """NOTIFY from a connection of its own ("another process") until the listener's LISTEN is in place."""
    url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
        for _ in range(50):
            await other.execute("SELECT pg_notify(%s, %s)", (run_signals.CHANNEL, payload))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.event.wait(), 0.1)
            if heard.ids:
                return


async def test_another_processs_change_is_heard_through_notify(runtime: Runtime, heard: Heard) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one process")
    listener = asyncio.create_task(run_signals.listen_forever(runtime.engine))
    try:
        await _notify_from_another_process_until_heard(runtime, heard, "run_elsewhere")
        assert "run_elsewhere" in heard.ids
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_a_run_queued_here_wakes_idle_workers_of_other_processes(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # issue 19 §1: the workers' claim, across processes
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one process")
    heard = asyncio.Event()
    stop = run_signals.on_queued(heard.set)
    listener = asyncio.create_task(run_signals.listen_forever(runtime.engine))  # as another process would
    try:
        agent = (await api.post("/v1/agents", json={"name": "A"}, headers=bearer(admin_token))).json()
        smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "S"},
                                headers=bearer(admin_token))).json()
        await asyncio.sleep(0.3)  # the listener's LISTEN is in place
        created = await api.post(f"/v1/smiths/{smith['id']}/runs", headers=bearer(admin_token),
                                 json={"input": [{"role": "user", "content": "hello"}]})
        assert created.status_code in (200, 201, 202), created.text
        await asyncio.wait_for(heard.wait(), 5)
    finally:
        stop()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def _queued_run(api: httpx.AsyncClient, admin_token: str) -> str:
    """A run nobody executes (no workers in these tests): it stays queued until the test changes it."""
    agent = (await api.post("/v1/agents", json={"name": "A"}, headers=bearer(admin_token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "S"},
                            headers=bearer(admin_token))).json()
    created = await api.post(f"/v1/smiths/{smith['id']}/runs", headers=bearer(admin_token),
                             json={"input": [{"role": "user", "content": "hello"}]})
    assert created.status_code in (200, 201, 202), created.text
    return str(created.json()["id"])


async def test_a_waiter_whose_run_never_finishes_times_out_at_its_limit(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # issue 19, bad input: waking on events never makes a waiter wait forever
    run_id = await _queued_run(api, admin_token)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await watcher_for(runtime.sessions).wait(run_id, timeout_s=0.6) is None
    waited = loop.time() - started
    assert 0.6 <= waited < 0.6 + 1.0, waited


async def test_a_lost_notification_delays_a_waiter_by_at_most_the_safety_poll(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # issue 19, bad input: a process killed between its commit and its notify
    run_id = await _queued_run(api, admin_token)
    watcher = watcher_for(runtime.sessions)
    waiting = asyncio.create_task(watcher.wait(run_id, timeout_s=30))
    await asyncio.sleep(0.2)  # the waiter is registered and has read the run once (queued)
    loop = asyncio.get_running_loop()
    async with runtime.transaction() as session:  # the change commits, and no signal follows it
        await session.execute(text("UPDATE run SET status = 'completed' WHERE id = :id"), {"id": run_id})
    changed_at = loop.time()
    run = await asyncio.wait_for(waiting, 30)
    late = loop.time() - changed_at
    assert run is not None and run.status == "completed"
    assert late <= RunWatcher.SAFETY_S + 0.5, late  # found by the safety-net read, not never


async def test_a_process_hears_its_own_notifications_once(runtime: Runtime, heard: Heard) -> None:
    """Its commit announced the change already: the NOTIFY coming back is skipped (it sent a second idle
    worker to find nothing), while another process's is heard."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one process")
    listener = asyncio.create_task(run_signals.listen_forever(runtime.engine))
    try:
        await _notify_from_another_process_until_heard(runtime, heard, "elsewhere:1:ab|run_other")
        assert set(heard.ids) == {"run_other"}
        heard.ids.clear()
        async with runtime.transaction() as session:
            await run_signals.note_changed(session, "run_mine")
        await asyncio.sleep(0.5)  # the notification has come back by now
        assert heard.ids == ["run_mine"]
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
