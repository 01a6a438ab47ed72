"""Schedules of a smith (SCH-1..SCH-4): thin; every rule is in ``app.services.schedules``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import CurrentActor, Session
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import schedules
from app.services.runs import RunView
from app.services.schedules import ScheduleCreate, ScheduleUpdate, ScheduleView
from models import Schedule

router = APIRouter(prefix="/smiths/{smith_id}/schedules", tags=["schedules"])


async def _view(session: Session, schedule: Schedule) -> ScheduleView:
    return (await schedules.views(session, [schedule]))[0]


@router.post("", status_code=201, response_model=ScheduleView)
async def create_schedule(smith_id: str, body: ScheduleCreate, actor: CurrentActor, session: Session) -> ScheduleView:
    """Run the smith on `input` whenever the 5-field `cron` matches in `timezone` (an IANA name)."""
    schedule = await schedules.create_schedule(session, actor=actor, smith_id=smith_id, body=body)
    return await _view(session, schedule)


@router.get("", response_model=ListResponse[ScheduleView])
async def list_schedules(smith_id: str, actor: CurrentActor, session: Session, limit: Limit = 50,
                         cursor: Cursor = None) -> ListResponse[ScheduleView]:
    page = await schedules.list_schedules(session, actor=actor, smith_id=smith_id, limit=limit, cursor=cursor)
    return ListResponse(data=await schedules.views(session, list(page.items)), next_cursor=page.next_cursor)


@router.get("/{schedule_id}", response_model=ScheduleView)
async def get_schedule(smith_id: str, schedule_id: str, actor: CurrentActor, session: Session) -> ScheduleView:
    schedule = await schedules.get_schedule(session, actor=actor, smith_id=smith_id, schedule_id=schedule_id)
    return await _view(session, schedule)


@router.patch("/{schedule_id}", response_model=ScheduleView)
async def update_schedule(smith_id: str, schedule_id: str, body: ScheduleUpdate, actor: CurrentActor,
                          session: Session) -> ScheduleView:
    """Change any field; `{"enabled": false}` pauses, `true` resumes from the next slot (SCH-3)."""
    schedule = await schedules.update_schedule(session, actor=actor, smith_id=smith_id, schedule_id=schedule_id,
                                               body=body)
    return await _view(session, schedule)


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(smith_id: str, schedule_id: str, actor: CurrentActor, session: Session) -> Response:
    await schedules.delete_schedule(session, actor=actor, smith_id=smith_id, schedule_id=schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/run_now", status_code=202, response_model=RunView)
async def run_now(smith_id: str, schedule_id: str, actor: CurrentActor, session: Session) -> RunView:
    """Fire at once, also while paused. The run is a normal run (`source: schedule`)."""
    run = await schedules.run_now(session, actor=actor, smith_id=smith_id, schedule_id=schedule_id)
    return RunView.of(run)
