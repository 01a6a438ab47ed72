"""Live streams (SSE) of one process: one shared poller, limits, and token re-checks (issue 13 §6).

Every open stream holds a ``Lease``. One poller per process and event loop reads, per tick, the new
project events of the projects being watched and the new events of the runs being watched (one
query each, whatever the number of streams) and hands each lease what it may see. Every
``IC_STREAM_RECHECK_SECONDS`` it also reads which of the streams' tokens are still valid (one query)
and closes the streams of revoked ones. The poller stops when the last stream closes.

Limits: ``IC_STREAMS_PER_TOKEN`` per token and ``IC_STREAMS_PER_PROCESS`` in all, refused with 429
``too_many_streams`` before a stream opens. A stream that cannot keep up (``MAX_PENDING`` undelivered
events) is closed rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from app.services import runs
from app.services.actors import Actor
from app.services.errors import RateLimited
from app.services.events import EventView
from app.services.runs import RunEventView
from app.services.runtime import get_runtime
from jobs import run_signals
from jobs.runstate import TERMINAL
from jobs.waiting import idle_wait
from models import ApiToken, Event, RunEvent
from models.types import id_floor, utcnow

log = logging.getLogger("ingram.streams")

POLL_S = 0.25
# Ids are given before commit, so an event may become visible after a newer one was seen: the poller
# re-reads a short window of project events and skips what it already handed out. A run's events are
# numbered and commit in order (jobs/events.py), so runs need no window: each is read after its last seq.
LOOKBACK = timedelta(seconds=10)
MAX_PENDING = 1000
TOO_MANY_STREAMS = "too_many_streams"
TERMINAL_RUN_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})


@dataclass(eq=False)
class Lease:
    """One open stream: what it watches, what the poller handed it, and why it must close."""

    actor: Actor
    run_id: str | None = None  # a run's stream; None = the project feed
    type_filter: str | None = None
    floor_id: str = ""  # the project feed shows events from its opening on
    last_seq: int = 0  # a run stream: the last event number handed to it (pending or sent)
    pending: deque[Any] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: str | None = None  # "token_revoked", "too_slow" or "server_stopping"
    _hub: StreamHub | None = None

    def _push(self, item: Any) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.close("too_slow")
            return
        self.pending.append(item)
        self.wake.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self.wake.set()

    def release(self) -> None:
        """Idempotent: called when the response ends, however it ends."""
        if self._hub is not None:
            self._hub._leases.discard(self)
            self._hub = None

    async def next_batch(self, timeout_s: float) -> list[Any]:
        """What arrived since the last call (waits up to ``timeout_s`` for something)."""
        if not self.pending and self.closed is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout_s)
        self.wake.clear()
        batch = list(self.pending)
        self.pending.clear()
        return batch

    def _sees(self, event: Event) -> bool:
        if event.project_id != self.actor.project_id or event.id <= self.floor_id:
            return False
        if not self.actor.is_admin and event.smith_id != self.actor.smith_id:
            return False
        if self.type_filter:
            prefix = self.type_filter.endswith(".")
            return event.type.startswith(self.type_filter) if prefix else event.type == self.type_filter
        return True


class StreamHub:
    def __init__(self) -> None:
        self._leases: set[Lease] = set()
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[str, datetime] = {}  # project events handed out within the window
        self._loop = asyncio.get_running_loop()
        # A run's committed transition wakes the poller at once (jobs.run_signals); other events wait
        # for the next tick.
        self._changed = asyncio.Event()
        hub = weakref.ref(self)

        def heard(run_ids: frozenset[str]) -> None:
            found = hub()
            if found is None:
                unsubscribe()
            elif found._leases:
                found._changed.set()

        unsubscribe = run_signals.subscribe(heard)

    def open(self, actor: Actor, *, run_id: str | None = None, after_seq: int = 0,
             type_filter: str | None = None) -> Lease:
        settings = get_runtime().settings
        if len(self._leases) >= settings.streams_per_process:
            raise RateLimited(f"this server holds {len(self._leases)} open streams, its limit; try again later",
                              code=TOO_MANY_STREAMS, details={"limit": settings.streams_per_process})
        if actor.token_id and sum(1 for lease in self._leases
                                  if lease.actor.token_id == actor.token_id) >= settings.streams_per_token:
            raise RateLimited(f"this token already holds {settings.streams_per_token} open streams; close one first",
                              code=TOO_MANY_STREAMS, details={"limit": settings.streams_per_token})
        lease = Lease(actor=actor, run_id=run_id, type_filter=type_filter, last_seq=after_seq,
                      floor_id=id_floor("evt", utcnow()), _hub=self)
        self._leases.add(lease)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="stream-poller")
        return lease

    async def _run(self) -> None:
        recheck_s = get_runtime().settings.stream_recheck_seconds
        next_recheck = self._loop.time() + recheck_s
        while self._leases:
            self._changed.clear()
            try:
                await self._tick()
                if self._loop.time() >= next_recheck:
                    next_recheck = self._loop.time() + recheck_s
                    await self._recheck_tokens()
            except Exception:  # a failed tick (database restarting) must not end every stream
                log.exception("stream poller tick failed")
            await idle_wait(self._changed, POLL_S)
        self._sent.clear()

    async def _tick(self) -> None:
        leases = list(self._leases)
        feeds = [lease for lease in leases if lease.run_id is None]
        runs: dict[str, int] = {}
        for lease in leases:
            if lease.run_id is not None:
                runs[lease.run_id] = min(runs.get(lease.run_id, lease.last_seq), lease.last_seq)
        # A read session: polling never takes SQLite's write lock (or queues behind writers for it).
        async with get_runtime().read() as session:
            events: list[Event] = []
            if feeds:
                floor = id_floor("evt", utcnow() - LOOKBACK)
                projects = {lease.actor.project_id for lease in feeds}
                events = list((await session.execute(
                    select(Event).where(Event.project_id.in_(projects), Event.id > floor)  # type: ignore[attr-defined]
                    .order_by(Event.id).limit(MAX_PENDING))).scalars())
            run_events: list[RunEvent] = []
            if runs:
                run_events = list((await session.execute(
                    select(RunEvent).where(or_(*(and_(RunEvent.run_id == run_id, RunEvent.seq > seq)
                                                 for run_id, seq in runs.items())))
                    .order_by(RunEvent.run_id, RunEvent.seq))).scalars())
            session.expunge_all()  # keep the loaded rows: the read session's rollback would expire them
        fresh = [event for event in events if event.id not in self._sent]
        for event in fresh:
            self._sent[event.id] = event.created_at
        horizon = utcnow() - 2 * LOOKBACK
        for event_id in [k for k, when in self._sent.items() if when < horizon]:
            del self._sent[event_id]
        for lease in feeds:
            for event in fresh:
                if lease._sees(event):
                    lease._push(event)
        for lease in leases:
            if lease.run_id is not None:
                for run_event in run_events:
                    if run_event.run_id == lease.run_id and run_event.seq > lease.last_seq:
                        lease._push(run_event)
                        lease.last_seq = run_event.seq

    async def _recheck_tokens(self) -> None:
        """Close the streams whose token was revoked since they opened (one query for them all)."""
        token_ids = {lease.actor.token_id for lease in self._leases if lease.actor.token_id}
        if not token_ids:
            return
        async with get_runtime().read() as session:
            valid = set((await session.execute(select(ApiToken.id).where(
                ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_(None)))).scalars())  # type: ignore[attr-defined,union-attr]
        for lease in list(self._leases):
            if lease.actor.token_id and lease.actor.token_id not in valid:
                lease.close("token_revoked")

    @property
    def open_count(self) -> int:
        return len(self._leases)


_hubs: dict[asyncio.AbstractEventLoop, StreamHub] = {}


def get_hub() -> StreamHub:
    """This process's hub (one per event loop: tests run each in its own loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]
        hub = _hubs[loop] = StreamHub()
    return hub


# -- the streams themselves (the routes wrap them in an EventSourceResponse) ----------------------

SSE = dict[str, str]
KEEPALIVE_S = 15.0


def _closing(reason: str) -> SSE:
    return {"event": "stream.closed", "data": json.dumps({"reason": reason})}


async def run_stream(lease: Lease, *, run_id: str, after_seq: int) -> AsyncIterator[SSE]:
    """A run's events after ``after_seq`` as they happen; ends after the run's last status event."""
    try:
        async with get_runtime().transaction() as session:  # the past first, then what the poller brings
            past = await runs.list_run_events(session, actor=lease.actor, run_id=run_id, after_seq=after_seq)
            run = await runs.get_run(session, actor=lease.actor, run_id=run_id)
        sent = after_seq
        for event in past:
            sent = event.seq
            yield {"event": event.type, "id": str(event.seq), "data": RunEventView.of(event).model_dump_json()}
        lease.last_seq = max(lease.last_seq, sent)
        if run.status in TERMINAL:
            return
        while True:
            for event in await lease.next_batch(KEEPALIVE_S):
                if event.seq <= sent:
                    continue
                sent = event.seq
                yield {"event": event.type, "id": str(event.seq), "data": RunEventView.of(event).model_dump_json()}
                if event.type in TERMINAL_RUN_EVENTS:
                    return
            if lease.closed:
                yield _closing(lease.closed)
                return
    finally:
        lease.release()


async def project_feed(lease: Lease) -> AsyncIterator[SSE]:
    """The project's events from the stream's opening on, as the poller hands them over."""
    try:
        while True:
            for event in await lease.next_batch(KEEPALIVE_S):
                yield {"event": event.type, "id": event.id, "data": json.dumps(EventView.of(event).model_dump())}
            if lease.closed:
                yield _closing(lease.closed)
                return
    finally:
        lease.release()
