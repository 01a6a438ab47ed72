"""The project's event feed (EV-1). Callers pass public fields only; never a secret."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.pagination import Page, paginate
from models import Event
from models.types import new_id


class EventView(BaseModel):
    id: str
    type: str
    data: dict[str, Any]
    run_id: str | None
    smith_id: str | None
    deployment_id: str | None
    created_at: str

    @classmethod
    def of(cls, event: Event) -> EventView:
        return cls(
            id=event.id, type=event.type, data=event.data, run_id=event.run_id,
            smith_id=event.smith_id, deployment_id=event.deployment_id,
            created_at=event.created_at.isoformat(),
        )


async def record_event(
    session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None = None,
    run_id: str | None = None, smith_id: str | None = None, deployment_id: str | None = None,
) -> Event:
    event = Event(
        id=new_id("evt"), project_id=project_id, type=type, data=data or {}, run_id=run_id,
        smith_id=smith_id, deployment_id=deployment_id,
    )
    session.add(event)
    await session.flush()
    return event


async def list_events(
    session: AsyncSession, *, actor: Actor, type: str | None = None, smith_id: str | None = None,
    limit: int | None = None, cursor: str | None = None,
) -> Page[Event]:
    stmt = select(Event).where(Event.project_id == actor.project_id)
    if not actor.is_admin:
        # A smith token sees its own smith's events only.
        smith_id = actor.smith_id
    if smith_id:
        stmt = stmt.where(Event.smith_id == smith_id)
    if type:
        # "run." matches every run.* event; an exact name matches itself.
        stmt = stmt.where(Event.type.startswith(type) if type.endswith(".") else Event.type == type)
    return await paginate(session, stmt, Event.id, limit=limit, cursor=cursor)
