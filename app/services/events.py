"""The project's event feed (EV-1). Callers pass public fields only; never a secret."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.pagination import Page, paginate
from jobs.events import append_event
from models import Event


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


record_event = append_event


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


async def list_events_after(
    session: AsyncSession, *, actor: Actor, after_id: str, type: str | None = None, limit: int = 200
) -> list[Event]:
    """Events newer than ``after_id``, oldest first (for live streams)."""
    stmt = select(Event).where(Event.project_id == actor.project_id, Event.id > after_id)
    if not actor.is_admin:
        stmt = stmt.where(Event.smith_id == actor.smith_id)
    if type:
        stmt = stmt.where(Event.type.startswith(type) if type.endswith(".") else Event.type == type)
    return list((await session.execute(stmt.order_by(Event.id).limit(limit))).scalars())
