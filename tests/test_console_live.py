"""The console's live views wake on a committed change of a run they show, not on a timer (issue 19 §1,
app/state/live.py): a transition or a new run event of a watched run wakes them at once, another run's
does not, a rolled-back change never does, re-reads keep their minimum gap, and a lost signal costs at
most the safety poll."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from app.services.runtime import Runtime
from app.state.live import RunChanges
from jobs import run_signals
from jobs.events import append_run_event
from tests.runs.test_run_signals import _queued_run


async def _timed(changes: RunChanges) -> tuple[bool, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    heard = await changes.next()
    return heard, loop.time() - started


async def test_a_watched_runs_committed_change_wakes_the_view_at_once(runtime: Runtime) -> None:
    changes = RunChanges(safety_s=10.0, min_gap_s=0.0)
    changes.watch(["run_shown"])
    try:
        waiting = asyncio.create_task(_timed(changes))
        await asyncio.sleep(0.05)
        async with runtime.transaction() as session:
            await run_signals.note_changed(session, "run_shown")
        heard, waited = await asyncio.wait_for(waiting, 5)
        assert heard and waited < 1.0, waited
    finally:
        changes.close()


async def test_a_new_event_of_a_watched_run_wakes_the_view(api: httpx.AsyncClient, admin_token: str,
                                                          runtime: Runtime) -> None:
    changes = RunChanges(safety_s=10.0, min_gap_s=0.0)
    try:
        run_id = await _queued_run(api, admin_token)
        changes.watch([run_id])
        waiting = asyncio.create_task(_timed(changes))
        await asyncio.sleep(0.05)
        async with runtime.transaction() as session:
            await append_run_event(session, run_id=run_id, type="run.step", data={"n": 1})
        heard, waited = await asyncio.wait_for(waiting, 5)
        assert heard and waited < 1.0, waited
    finally:
        changes.close()


async def test_other_runs_and_rollbacks_do_not_wake_it_and_the_safety_poll_still_does(runtime: Runtime) -> None:
    changes = RunChanges(safety_s=0.5, min_gap_s=0.0)
    changes.watch(["run_shown"])
    try:
        waiting = asyncio.create_task(_timed(changes))
        await asyncio.sleep(0.05)
        async with runtime.transaction() as session:
            await run_signals.note_changed(session, "run_elsewhere")
        with contextlib.suppress(RuntimeError):
            async with runtime.transaction() as session:
                await run_signals.note_changed(session, "run_shown")
                raise RuntimeError("rolled back")
        heard, waited = await asyncio.wait_for(waiting, 5)
        assert not heard and 0.45 <= waited < 1.5, waited  # the safety poll, nothing sooner
    finally:
        changes.close()


async def test_re_reads_keep_their_minimum_gap(runtime: Runtime) -> None:
    changes = RunChanges(safety_s=10.0, min_gap_s=0.3)
    changes.watch(["run_busy"])
    try:
        for _ in range(2):  # a run changing all the time: the second re-read waits out the gap
            async with runtime.transaction() as session:
                await run_signals.note_changed(session, "run_busy")
        first = await _timed(changes)
        async with runtime.transaction() as session:
            await run_signals.note_changed(session, "run_busy")
        second = await _timed(changes)
        assert first[0] and first[1] < 0.2, first
        assert second[0] and 0.28 <= second[1] < 1.0, second
    finally:
        changes.close()
