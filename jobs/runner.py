"""Run workers: every server process runs a few; each claims a run, executes it, repeats.

Idle workers sleep until woken (a run queued: at its commit in this process, jobs.commit_hooks; over
NOTIFY from another on PostgreSQL) or until the poll interval passes (leases that expired after a crash).
A run announced while every worker is busy is counted, and a worker that finishes claims again only for
those: at a steady trickle each run costs one claim, not a second one that finds nothing (issue 19 §2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.agent import AgentEnv, AgentLoop
from jobs.run_signals import on_queued
from jobs.waiting import idle_wait, inbound_first

log = logging.getLogger("ingram.runner")

IDLE_SAFETY_S = 30.0  # an idle worker that is not the poller still looks this often


class RunWorkers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], env_for: Callable[[str], AgentEnv], *,
                 count: int, poll_interval_s: float = 0.5, lease_seconds: float = 60.0) -> None:
        self.sessions = sessions
        self.env_for = env_for
        self.count = count
        self.poll_interval_s = poll_interval_s
        self.lease_seconds = lease_seconds
        self._idle: dict[str, asyncio.Event] = {}
        self._poller: str | None = None  # the one idle worker that looks for runs on a timer
        self._base_id = f"{socket.gethostname()}:{os.getpid()}"
        self.completed = 0
        self._unheard = 0  # runs announced while no worker was idle: finishing workers claim for them
        self._draining = False  # unannounced work was found: every worker claims until a claim finds none

    def wake_one(self) -> None:
        """One idle worker looks (waking all would send every worker to the database for one run); with
        none idle, the next worker to finish does."""
        for event in self._idle.values():
            if not event.is_set():
                event.set()
                return
        self._unheard += 1

    async def run_forever(self) -> None:
        stop_hearing = on_queued(self.wake_one)
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self.count):
                    group.create_task(self._worker(f"{self._base_id}:{index}"))
        finally:
            stop_hearing()

    async def _worker(self, worker_id: str) -> None:
        env = self.env_for(worker_id)
        wake = asyncio.Event()
        found_by_polling = False
        while True:
            await inbound_first()
            loop = AgentLoop(env)
            try:
                # The claim and the run's first steps share one transaction.
                claimed = await loop.claim_and_execute()
            except Exception:
                # The lease expires and another attempt picks the run up from its last step.
                log.exception("run %s crashed in worker %s", loop.run_id or "(claiming)", worker_id)
                claimed = bool(loop.run_id)
            if claimed:
                self.completed += 1
                if found_by_polling:  # work nobody announced (a lease expired, another process's): drain it
                    self._draining = True
                    found_by_polling = False
                    self.wake_one()
                if self._draining:
                    continue
                if self._unheard:  # announced while every worker was busy: claim again for it
                    self._unheard -= 1
                    continue
            else:
                self._draining = False  # a claim found nothing: no backlog is left
            # Nothing announced is left for this worker: sleep until an announcement or the poll.
            wake.clear()
            self._idle[worker_id] = wake
            # One idle worker polls (runs enqueued by other processes, leases expired after a crash);
            # the others sleep until an enqueue in this process wakes them (wake_one), so an idle
            # server costs one claim per poll interval, not one per worker.
            polling = self._poller is None
            if polling:
                self._poller = worker_id
            await idle_wait(wake, self.poll_interval_s if polling else IDLE_SAFETY_S)
            if self._poller == worker_id:
                self._poller = None
            self._idle.pop(worker_id, None)
            found_by_polling = not wake.is_set()
