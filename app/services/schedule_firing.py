"""What the leader's scheduler calls (SCH-2): fires insert runs in batches, missed slots become
events. ``jobs.scheduler`` owns the timing; the rules of a fire live here."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import select

from app.services.events import record_event
from app.services.runs import InputMessage, input_message_rows
from app.services.schedules import event_data, next_slot, schedule_sender
from jobs.leader import lead_forever
from jobs.run_signals import note_queued
from jobs.scheduler import Clock, FireRequest, FireResult, Missed, Scheduler, clock_from_env
from jobs.thread_messages import new_nonce
from models import Event, Message, Run, RunEvent, Schedule, Smith, Thread
from models.types import new_id


def _queued_run_rows(schedule: Schedule, smith: Smith, slot: datetime,
                     trigger: dict[str, Any]) -> tuple[Run, list[Any], list[Any]]:
    """The rows ``enqueue_run`` writes for this run, built without its per-row round trips so that a
    batch of fires is one multi-row INSERT per table. Same thread, platform line (ID-1), forgery
    stripping (ID-4), run event and feed events: tests/schedules/test_firing.py compares the two.
    Returns the run, the parent rows and the rows that reference them (flushed in that order: the
    tables have foreign keys but no relationships, so the unit of work cannot order them itself)."""
    messages = [InputMessage(**m) for m in schedule.input]
    sender, nonce = schedule_sender(schedule), new_nonce()
    thread = Thread(id=new_id("thr"), project_id=smith.project_id, smith_id=smith.id)
    run = Run(id=new_id("run"), project_id=smith.project_id, smith_id=smith.id, thread_id=thread.id,
              source="schedule", input=[m.model_dump() for m in messages],
              run_metadata={"schedule": {"id": schedule.id, "name": schedule.name, **trigger}, "sender": sender,
                            "_nonce": nonce},
              schedule_id=schedule.id, scheduled_for=slot)
    message_rows, stripped_total = input_message_rows(run.id, thread.id, messages, sender, nonce)
    rows: list[Any] = [Message(**row) for row in message_rows]
    data = {"run_id": run.id, "status": "queued", "source": "schedule", "stripped_lines": stripped_total}
    rows.append(RunEvent(id=new_id("rev"), run_id=run.id, seq=1, type="run.queued", data=data))
    rows.append(Event(id=new_id("evt"), project_id=run.project_id, type="run.queued", data=data, run_id=run.id,
                      smith_id=run.smith_id))
    rows.append(Event(id=new_id("evt"), project_id=run.project_id, type="schedule.fired", run_id=run.id,
                      smith_id=run.smith_id, data={"schedule_id": schedule.id, "run_id": run.id, **trigger}))
    return run, [thread, run], rows


class ScheduleFiring:
    """``jobs.scheduler.ScheduleHooks`` for the scheduler: it passes the session, we own the rules."""

    async def fire(self, session: AsyncSession, *, requests: list[FireRequest], now: datetime,
                   fired_by: str) -> list[FireResult]:
        ids = list({r.schedule_id for r in requests})
        found = {schedule.id: (schedule, smith) for schedule, smith in (await session.execute(
            select(Schedule, Smith).join(Smith, Smith.id == Schedule.smith_id)  # type: ignore[arg-type]
            .where(Schedule.id.in_(ids)))).all()}  # type: ignore[attr-defined]
        results, children = [], []
        for request in requests:
            schedule, smith = found.get(request.schedule_id, (None, None))
            if schedule is None or smith is None:
                results.append(FireResult(None, "gone"))
            elif not schedule.enabled:
                results.append(FireResult(None, "paused"))
            elif schedule.next_fire_at is not None and request.slot < schedule.next_fire_at:
                # Fired already, or edited/resumed since this slot was planned: never fire an old plan.
                results.append(FireResult(None, "handled", schedule.next_fire_at))
            else:
                slot = request.slot
                trigger = {"trigger": "cron", "scheduled_for": slot.isoformat(), "catch_up": request.catch_up,
                           "coalesced": request.coalesced,
                           "late_by_s": round(max((now - slot).total_seconds(), 0.0), 3), "fired_by": fired_by}
                run, parents, rows = _queued_run_rows(schedule, smith, slot, trigger)
                session.add_all(parents)
                children.extend(rows)
                schedule.last_run_id, schedule.last_fired_for = run.id, slot
                schedule.next_fire_at = next_slot(schedule.cron, schedule.timezone, slot)
                # updated_at stays: firing is not an edit the leader must re-read.
                results.append(FireResult(run.id, "fired", schedule.next_fire_at))
        await session.flush()  # the unique (schedule_id, scheduled_for) key speaks here
        session.add_all(children)
        await session.flush()
        if children:  # idle workers look once this commits (here and, on PostgreSQL, elsewhere)
            await note_queued(session, next(r.run_id for r in results if r.run_id))
        return results

    async def missed(self, session: AsyncSession, *, schedule_id: str, expected: datetime, missed: Missed,
                     resume_at: datetime, now: datetime) -> bool:
        moved = await session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.enabled.is_(True),  # type: ignore[attr-defined]
                   Schedule.next_fire_at == expected)
            .values(next_fire_at=resume_at)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return False
        schedule = await session.get(Schedule, schedule_id)
        assert schedule is not None
        await record_event(session, project_id=schedule.project_id, type="schedule.missed", smith_id=schedule.smith_id,
                           data=event_data(
                               schedule, count=missed.count, at_least=missed.at_least,
                               first=missed.first.isoformat(), last=missed.last.isoformat(),
                               grace_seconds=schedule.grace_seconds, detected_at=now.isoformat(),
                               reason="no scheduler was running at these times; fires older than the grace "
                                      "window are not run late"))
        return True


HOOKS = ScheduleFiring()


def new_scheduler(sessions: async_sessionmaker[AsyncSession], *, clock: Clock | None = None,
                  database_url: str | None = None, **options: Any) -> Scheduler:
    """The scheduler with this module's rules; ``database_url`` moves its fire transactions to a
    thread of their own (as in production), without it they run on the caller's loop."""
    return Scheduler(sessions, HOOKS, clock=clock or clock_from_env(), database_url=database_url, **options)


async def run_scheduler(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], data_dir: Path, *,
                        retry_s: float = 2.0, scheduler: Scheduler | None = None) -> None:
    """Compete for the scheduler lock forever; while held, this process fires schedules."""
    leader = scheduler or new_scheduler(sessions, database_url=engine.url.render_as_string(hide_password=False))
    await lead_forever(engine, data_dir, "scheduler", leader.run, retry_s=retry_s)

