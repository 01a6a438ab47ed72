"""The run lifecycle. ``transition`` is the one function that changes a run's status.

queued -> running -> (awaiting_approval -> queued -> running ...) -> completed | failed | cancelled

Every change is a conditional UPDATE on the status it expects (and, for workers, on the lease
it holds), so a cancel racing a worker, or two workers after a lease expiry, cannot both win.
Each change appends a run event and a project event ``run.<status>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.events import append_event, append_run_event
from jobs.run_signals import note_changed, note_queued
from models.store import runs as store
from models.store.runs import RunLike, RunState
from models.types import utcnow

TERMINAL = frozenset({"completed", "failed", "cancelled"})
ALLOWED: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"queued", "awaiting_approval", "completed", "failed", "cancelled"}),
    "awaiting_approval": frozenset({"queued", "cancelled", "failed"}),
}


class TransitionError(Exception):
    pass


async def transition(
    session: AsyncSession, run: RunLike, to: str, *, data: dict[str, Any] | None = None,
    lease_owner: str | None = None, values: dict[str, Any] | None = None,
    available_at: datetime | None = None,
) -> RunState | None:
    """Move ``run`` from its current status to ``to``: the run as it now is, or None if someone else
    changed it first.

    ``lease_owner`` makes the change conditional on still holding the lease (workers pass it).
    ``values`` are other columns to set in the same UPDATE (output, error, usage, ...). A caller
    holding an ORM ``Run`` refreshes it afterwards: the UPDATE does not touch loaded objects.
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
    if not await store.change_status(session, run_id=run.id, expected=current, changes=changes,
                                     lease_owner=lease_owner):
        return None
    await note_changed(session, run.id)  # whoever waits on this run hears it once this commits
    if to == "queued":  # claimable again (an approval decided): idle workers elsewhere look
        await note_queued(session, run.id)
    payload = {"run_id": run.id, "status": to, "from": current, **(data or {})}
    await append_run_event(session, run_id=run.id, type=f"run.{to}", data=payload)
    await append_event(session, project_id=run.project_id, type=f"run.{to}", data=payload,
                       run_id=run.id, smith_id=run.smith_id, deployment_id=run.deployment_id)
    return (run if isinstance(run, RunState) else RunState.of(run)).with_changes(changes)
