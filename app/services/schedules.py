"""Schedules (SCH-1..SCH-4): cron entries that run a smith on a fixed input.

Every rule lives here; the /v1 router and the console call these functions. The leader's
``jobs.scheduler.Scheduler`` fires through ``HOOKS`` (below). A scheduled run is a normal run
(SCH-4): ``run_now`` goes through ``enqueue_run``; cron fires write the very same rows, built in
batches (``_queued_run_rows``) because a burst of fires would otherwise cost ~20 round trips each
(tests/schedules/test_firing.py keeps the two identical).

Row conventions the scheduler relies on: ``next_fire_at`` is the first slot not yet handled
(None while paused); ``updated_at`` moves on every change a person makes (the leader re-reads
those rows), never when the scheduler fires. Resuming a paused schedule plans from the next slot
after now: slots that passed while it was paused are not fired.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import Invalid, NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from app.services.routing import DELIVERY_RULE, Conversation, check_delivery_deployment, conversations_of
from app.services.runs import MAX_INPUT_CHARS, MAX_INPUT_MESSAGES, InputMessage, enqueue_run
from app.services.smiths import get_smith
from jobs.cron import CronError, TimezoneError, next_fires, parse_cron, validate_timezone
from jobs.cron_describe import describe
from models import Run, Schedule, Smith
from models.types import new_id, utcnow

PREVIEW_COUNT = 5
MAX_CRON_CHARS = 200  # the column's width
MAX_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_GRACE_SECONDS = 3600


def _check_input(value: list[InputMessage]) -> list[InputMessage]:
    # The same rules as a run's input (RunCreate): the schedule's input becomes exactly that.
    if value[-1].role != "user":
        raise ValueError("the last input message must have role 'user'")
    if sum(len(m.content) for m in value) > MAX_INPUT_CHARS:
        raise ValueError(f"the input may hold at most {MAX_INPUT_CHARS} characters in all")
    return value


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    cron: str  # checked by parse_cron, so the error names the field at fault (invalid_cron)
    timezone: str = "UTC"  # checked by validate_timezone (invalid_timezone)
    input: list[InputMessage] = Field(min_length=1, max_length=MAX_INPUT_MESSAGES)
    enabled: bool = True
    grace_seconds: int = Field(default=DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)
    deployment_id: str | None = Field(default=None, max_length=40, description=DELIVERY_RULE)

    _input = field_validator("input")(_check_input)


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = None
    timezone: str | None = None
    input: list[InputMessage] | None = Field(default=None, min_length=1, max_length=MAX_INPUT_MESSAGES)
    enabled: bool | None = None
    grace_seconds: int | None = Field(default=None, ge=0, le=MAX_GRACE_SECONDS)
    deployment_id: str | None = Field(default=None, max_length=40, description=DELIVERY_RULE + " null clears it.")

    @field_validator("input")
    @classmethod
    def _shape(cls, value: list[InputMessage] | None) -> list[InputMessage] | None:
        return None if value is None else _check_input(value)


class FireTime(BaseModel):
    local: str  # ISO 8601 in the schedule's zone, with its offset
    utc: str


class CronPreview(BaseModel):
    description: str
    next_fires: list[FireTime]


class ScheduleView(BaseModel):
    id: str
    smith_id: str
    name: str
    cron: str
    timezone: str
    input: list[dict[str, Any]]
    enabled: bool
    grace_seconds: int
    deployment_id: str | None
    description: str
    next_fires: list[FireTime]  # empty while paused
    next_fire_at: str | None
    last_fired_for: str | None
    last_run_id: str | None
    last_run_status: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, schedule: Schedule, *, last_run_status: str | None = None, now: datetime | None = None) -> ScheduleView:
        fires = (preview(schedule.cron, schedule.timezone, now=now).next_fires if schedule.enabled else [])
        return cls(
            id=schedule.id, smith_id=schedule.smith_id, name=schedule.name, cron=schedule.cron,
            timezone=schedule.timezone, input=schedule.input, enabled=schedule.enabled,
            grace_seconds=schedule.grace_seconds, deployment_id=schedule.deployment_id,
            description=describe(schedule.cron, schedule.timezone),
            next_fires=fires, next_fire_at=_iso(schedule.next_fire_at), last_fired_for=_iso(schedule.last_fired_for),
            last_run_id=schedule.last_run_id, last_run_status=last_run_status,
            created_at=schedule.created_at.isoformat(), updated_at=schedule.updated_at.isoformat(),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- validation (shared by the API and the console's validate-as-you-type) ----------------------------


def check_cron(cron: str) -> None:
    """Raises Invalid ``invalid_cron`` naming the part at fault (``cron.hour``, or ``cron``)."""
    if len(cron) > MAX_CRON_CHARS:
        raise Invalid(f"cron expression is longer than {MAX_CRON_CHARS} characters", code="invalid_cron",
                      field="cron")
    try:
        parse_cron(cron)
    except CronError as exc:
        field = "cron" if exc.field == "expression" else f"cron.{exc.field}"
        raise Invalid(exc.message, code="invalid_cron", field=field) from exc


def check_timezone(name: str) -> None:
    try:
        validate_timezone(name)
    except TimezoneError as exc:
        raise Invalid(exc.message, code="invalid_timezone", field="timezone") from exc


def preview(cron: str, timezone: str, *, now: datetime | None = None, count: int = PREVIEW_COUNT) -> CronPreview:
    """What a cron and zone mean and when they fire next; raises Invalid like create does."""
    check_cron(cron)
    check_timezone(timezone)
    zone = validate_timezone(timezone)
    fires = next_fires(cron, zone, now or utcnow(), count)
    return CronPreview(description=describe(cron, timezone),
                       next_fires=[FireTime(local=f.astimezone(zone).isoformat(), utc=f.isoformat()) for f in fires])


def next_slot(cron: str, timezone: str, after: datetime) -> datetime:
    return next_fires(cron, timezone, after, 1)[0]


# -- CRUD (SCH-1, SCH-3) ------------------------------------------------------------------------------------


async def _get(session: AsyncSession, actor: Actor, smith_id: str, schedule_id: str) -> tuple[Smith, Schedule]:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)  # 403 for another smith's token
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None or schedule.smith_id != smith.id:
        raise NotFound(f"no schedule {schedule_id} on smith {smith.id}", code="schedule_not_found")
    return smith, schedule


def _name(value: str) -> str:
    if not value.strip():
        raise Invalid("name must not be blank", field="name")
    return value.strip()


def event_data(schedule: Schedule, **extra: Any) -> dict[str, Any]:
    return {"schedule_id": schedule.id, "name": schedule.name, "cron": schedule.cron,
            "timezone": schedule.timezone, **extra}


async def create_schedule(session: AsyncSession, *, actor: Actor, smith_id: str, body: ScheduleCreate,
                          now: datetime | None = None) -> Schedule:
    """SCH-1. ``now`` is the instant to plan the first fire from (tests pass a controlled clock's);
    the row's timestamps are always real time."""
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    cron = body.cron.strip()
    check_cron(cron)
    check_timezone(body.timezone)
    now = now or utcnow()
    if body.deployment_id:
        await check_delivery_deployment(session, smith_id=smith.id, deployment_id=body.deployment_id)
    schedule = Schedule(
        id=new_id("sch"), project_id=smith.project_id, smith_id=smith.id, name=_name(body.name), cron=cron,
        timezone=body.timezone, input=[m.model_dump() for m in body.input], enabled=body.enabled,
        grace_seconds=body.grace_seconds, deployment_id=body.deployment_id,
        next_fire_at=next_slot(cron, body.timezone, now) if body.enabled else None,
    )
    session.add(schedule)
    await session.flush()
    await record_event(session, project_id=smith.project_id, type="schedule.created", smith_id=smith.id,
                       data=event_data(schedule, enabled=schedule.enabled))
    return schedule


async def get_schedule(session: AsyncSession, *, actor: Actor, smith_id: str, schedule_id: str) -> Schedule:
    return (await _get(session, actor, smith_id, schedule_id))[1]


async def list_schedules(session: AsyncSession, *, actor: Actor, smith_id: str, limit: int | None = None,
                         cursor: str | None = None) -> Page[Schedule]:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    stmt = select(Schedule).where(Schedule.smith_id == smith.id)
    return await paginate(session, stmt, Schedule.id, limit=limit, cursor=cursor)


async def delivery_options(session: AsyncSession, *, actor: Actor, smith_id: str) -> list[Conversation]:
    """The smith's live conversations a schedule's replies can go to, most recently active first."""
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    return await conversations_of(session, smith.id)


async def views(session: AsyncSession, schedules: list[Schedule], *, now: datetime | None = None) -> list[ScheduleView]:
    """Views with each last run's status, in one query."""
    run_ids = [s.last_run_id for s in schedules if s.last_run_id]
    statuses: dict[str, str] = {}
    if run_ids:
        rows = await session.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids)))  # type: ignore[attr-defined]
        statuses = {run_id: status for run_id, status in rows.all()}
    return [ScheduleView.of(s, last_run_status=statuses.get(s.last_run_id or ""), now=now) for s in schedules]


async def update_schedule(session: AsyncSession, *, actor: Actor, smith_id: str, schedule_id: str,
                          body: ScheduleUpdate, now: datetime | None = None) -> Schedule:
    """Change any field. ``enabled: false`` pauses (SCH-3); resuming fires from the next slot on."""
    _, schedule = await _get(session, actor, smith_id, schedule_id)
    now = now or utcnow()
    wanted: dict[str, Any] = {
        "name": _name(body.name) if body.name is not None else schedule.name,
        "cron": body.cron.strip() if body.cron is not None else schedule.cron,
        "timezone": body.timezone if body.timezone is not None else schedule.timezone,
        "input": [m.model_dump() for m in body.input] if body.input is not None else schedule.input,
        "grace_seconds": body.grace_seconds if body.grace_seconds is not None else schedule.grace_seconds,
        "deployment_id": body.deployment_id if "deployment_id" in body.model_fields_set else schedule.deployment_id,
    }
    if wanted["deployment_id"] and wanted["deployment_id"] != schedule.deployment_id:
        await check_delivery_deployment(session, smith_id=schedule.smith_id, deployment_id=wanted["deployment_id"])
    if body.cron is not None:
        check_cron(wanted["cron"])
    if body.timezone is not None:
        check_timezone(wanted["timezone"])
    changed = [key for key, value in wanted.items() if getattr(schedule, key) != value]
    toggled = body.enabled is not None and body.enabled != schedule.enabled
    if not changed and not toggled:
        return schedule
    for key in changed:
        setattr(schedule, key, wanted[key])
    if toggled:
        schedule.enabled = bool(body.enabled)
    if not schedule.enabled:
        schedule.next_fire_at = None
    elif toggled or "cron" in changed or "timezone" in changed:
        # Resumed or re-timed: the next slot after now; nothing in between is replayed.
        schedule.next_fire_at = next_slot(schedule.cron, schedule.timezone, now)
    schedule.updated_at = utcnow()  # real time even when planning from a given ``now``: the leader syncs on it
    session.add(schedule)
    await session.flush()
    if changed:
        await record_event(session, project_id=schedule.project_id, type="schedule.updated",
                           smith_id=schedule.smith_id, data=event_data(schedule, changed=changed))
    if toggled:
        await record_event(session, project_id=schedule.project_id, smith_id=schedule.smith_id,
                           type="schedule.resumed" if schedule.enabled else "schedule.paused",
                           data=event_data(schedule, next_fire_at=_iso(schedule.next_fire_at)))
    return schedule


async def delete_schedule(session: AsyncSession, *, actor: Actor, smith_id: str, schedule_id: str) -> None:
    """Removes the schedule; its past runs stay (they are normal runs, SCH-4)."""
    _, schedule = await _get(session, actor, smith_id, schedule_id)
    await session.delete(schedule)
    await record_event(session, project_id=schedule.project_id, type="schedule.deleted", smith_id=schedule.smith_id,
                       data=event_data(schedule))


def schedule_sender(schedule: Schedule) -> dict[str, Any]:
    """Whoever created the schedule acts for the owner (an admin or the smith's own token)."""
    return {"is_owner": True, "channel": "schedule", "identity": f"schedule:{schedule.id}",
            "display": schedule.name, "verified": True}


async def _enqueue(session: AsyncSession, schedule: Schedule, smith: Smith, *, slot: datetime | None,
                   trigger: dict[str, Any]) -> Run:
    messages = [InputMessage(**m) for m in schedule.input]
    meta = {"schedule": {"id": schedule.id, "name": schedule.name, **trigger}}
    run = await enqueue_run(session, smith=smith, messages=messages, source="schedule",
                            sender=schedule_sender(schedule), schedule_id=schedule.id, scheduled_for=slot,
                            metadata=meta)
    schedule.last_run_id = run.id
    await record_event(session, project_id=schedule.project_id, type="schedule.fired", run_id=run.id,
                       smith_id=schedule.smith_id, data={"schedule_id": schedule.id, "run_id": run.id, **trigger})
    return run


async def run_now(session: AsyncSession, *, actor: Actor, smith_id: str, schedule_id: str) -> Run:
    """Fire at once, also while paused (SCH-3). Not a slot: ``scheduled_for`` stays empty, so it
    never collides with (or replaces) a cron fire; the caller wakes the workers after commit."""
    smith, schedule = await _get(session, actor, smith_id, schedule_id)
    run = await _enqueue(session, schedule, smith, slot=None, trigger={"trigger": "run_now", "by": actor.subject})
    session.add(schedule)
    return run
