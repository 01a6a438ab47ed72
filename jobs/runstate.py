"""The run lifecycle. ``transition`` is the one function that changes a run's status.

queued -> running -> (awaiting_approval -> queued -> running ...) -> completed | failed | cancelled

Every change is a conditional UPDATE on the status it expects (and, for workers, on the lease
it holds), so a cancel racing a worker, or two workers after a lease expiry, cannot both win.
Each change appends a run event and a project event ``run.<status>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from jobs.events import append_event, append_run_event
from jobs.run_signals import note_changed, note_queued
from models import Run
from models.hot import Hot, flush_pending
from models.types import utcnow

_RUN = Run.__table__
_UPDATES: dict[tuple[tuple[str, ...], bool], Hot] = {}


def _update_for(columns: tuple[str, ...], leased: bool) -> Hot:
    """The conditional UPDATE for this set of columns, built once and run as a hot statement
    (models/hot.py): the ORM's bulk-update path, and building the statement each time, cost more
    than running it. The caller's Run object is brought up to date by hand (set_committed_value)."""
    key = (columns, leased)
    if key not in _UPDATES:
        stmt = update(_RUN).where(_RUN.c.id == bindparam("w_id"), _RUN.c.status == bindparam("w_status"))
        if leased:
            stmt = stmt.where(_RUN.c.lease_owner == bindparam("w_lease"))
        _UPDATES[key] = Hot(stmt.values({name: bindparam(name) for name in columns}))
    return _UPDATES[key]


TERMINAL = frozenset({"completed", "failed", "cancelled"})
ALLOWED: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"queued", "awaiting_approval", "completed", "failed", "cancelled"}),
    "awaiting_approval": frozenset({"queued", "cancelled", "failed"}),
}


class TransitionError(Exception):
    pass


async def transition(
    session: AsyncSession, run: Run, to: str, *, data: dict[str, Any] | None = None,
    lease_owner: str | None = None, values: dict[str, Any] | None = None,
    available_at: datetime | None = None,
) -> bool:
    """Move ``run`` from its current status to ``to``. False if someone else changed it first.

    ``lease_owner`` makes the change conditional on still holding the lease (workers pass it).
    ``values`` are other columns to set in the same UPDATE (output, error, usage, ...).
    """
    current = run.status
    if to not in ALLOWED.get(current, frozenset()):
        raise TransitionError(f"a {current} run cannot become {to}")
    now = utcnow()
    changes: dict[str, Any] = {"status": to, "updated_at": now, **(values or {})}
    if to in TERMINAL:
        changes.update(finished_at=now, lease_owner=None, lease_expires_at=None)
    elif to in {"queued", "awaiting_approval"}:
        changes.update(lease_owner=None, lease_expires_at=None)
        if to == "queued":
            changes["available_at"] = available_at or now
    params = {**changes, "w_id": run.id, "w_status": current, "w_lease": lease_owner}
    await flush_pending(session)  # the run's own pending changes, if any, go before this UPDATE
    if await _update_for(tuple(changes), lease_owner is not None).rowcount(session, params) != 1:
        return False
    for key, value in changes.items():  # what the row now holds: nothing left for the ORM to flush
        set_committed_value(run, key, value)
    await note_changed(session, run.id)  # whoever waits on this run hears it once this commits
    if to == "queued":  # claimable again (an approval decided): idle workers elsewhere look
        await note_queued(session, run.id)
    payload = {"run_id": run.id, "status": to, "from": current, **(data or {})}
    await append_run_event(session, run_id=run.id, type=f"run.{to}", data=payload)
    await append_event(session, project_id=run.project_id, type=f"run.{to}", data=payload,
                       run_id=run.id, smith_id=run.smith_id, deployment_id=run.deployment_id)
    return True
