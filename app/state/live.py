"""What wakes the console's live views: a committed change of a run they show (issue 19 §1).

The runs list, a run's page and the schedules page used to re-read the database every second while a run
was active. They now sleep until ``jobs.run_signals`` says a run they show changed (a transition or a new
event, committed here or, on PostgreSQL, in another process), then re-read once. A slow poll stays as the
safety net for a lost signal, and a short gap between re-reads keeps a busy project from re-reading a page
for every step of every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from jobs import run_signals
from jobs.waiting import idle_wait

SAFETY_POLL_S = 5.0  # a lost signal shows at most this late
MIN_GAP_S = 0.25  # at most four re-reads a second, however busy the runs


class RunChanges:
    """Waits for a change of the runs being watched; ``close`` it when done (it subscribes)."""

    def __init__(self, *, safety_s: float = SAFETY_POLL_S, min_gap_s: float = MIN_GAP_S) -> None:
        self.safety_s, self.min_gap_s = safety_s, min_gap_s
        self._watched: frozenset[str] = frozenset()
        self._changed = asyncio.Event()
        self._last = 0.0
        self._unsubscribe = run_signals.subscribe(self._heard)

    def watch(self, run_ids: Iterable[str]) -> None:
        self._watched = frozenset(run_ids)

    def _heard(self, run_ids: frozenset[str]) -> None:
        if not run_ids.isdisjoint(self._watched):
            self._changed.set()

    async def next(self) -> bool:
        """Returns once a watched run changed (True) or the safety poll came due (False), never sooner
        than ``min_gap_s`` after the previous return."""
        loop = asyncio.get_running_loop()
        if (gap := self._last + self.min_gap_s - loop.time()) > 0:
            await asyncio.sleep(gap)
        await idle_wait(self._changed, self.safety_s)
        heard = self._changed.is_set()
        self._changed.clear()
        self._last = loop.time()
        return heard

    def close(self) -> None:
        self._unsubscribe()
