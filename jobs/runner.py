"""Run workers: every server process runs a few; each claims a run, executes it, repeats.

Idle workers sleep until woken (a run enqueued in this process) or until the poll interval
passes (runs enqueued by other processes, leases that expired after a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.agent import AgentEnv, AgentLoop
from jobs.delivery import wake_deliverers
from jobs.queue import claim_run

log = logging.getLogger("ingram.runner")

_wakeups: set[asyncio.Event] = set()


def wake_workers() -> None:
    """Called after a run is enqueued (once its transaction committed) in this process."""
    for event in list(_wakeups):
        event.set()


class RunWorkers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], env_for: Callable[[str], AgentEnv], *,
                 count: int, poll_interval_s: float = 0.5, lease_seconds: float = 60.0) -> None:
        self.sessions = sessions
        self.env_for = env_for
        self.count = count
        self.poll_interval_s = poll_interval_s
        self.lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._base_id = f"{socket.gethostname()}:{os.getpid()}"
        self.completed = 0

    async def run_forever(self) -> None:
        _wakeups.add(self._wake)
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self.count):
                    group.create_task(self._worker(f"{self._base_id}:{index}"))
        finally:
            _wakeups.discard(self._wake)

    async def _claim(self, worker_id: str) -> str | None:
        async with self.sessions() as session, session.begin():
            run = await claim_run(session, worker_id=worker_id, lease_seconds=self.lease_seconds)
            return run.id if run else None

    async def _worker(self, worker_id: str) -> None:
        env = self.env_for(worker_id)
        while True:
            try:
                run_id = await self._claim(worker_id)
            except Exception:
                log.exception("claiming a run failed; retrying")
                run_id = None
            if run_id is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                continue
            try:
                await AgentLoop(env, run_id).execute()
                self.completed += 1
                wake_deliverers()  # its reply or approval prompt may be waiting in the outbox
            except Exception:
                # The lease expires and another attempt picks the run up from its last step.
                log.exception("run %s crashed in worker %s", run_id, worker_id)
            # Others may have been enqueued while this one ran.
            self._wake.set()
