"""Smiths: persistent instances of an agent, each with its own memory and threads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.agents import get_agent
from app.services.bindings import revoke_smith_bindings
from app.services.errors import NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from models import (
    ApiToken,
    Approval,
    MemoryEntry,
    Message,
    Run,
    RunEvent,
    Schedule,
    Smith,
    Thread,
)
from models.types import new_id, utcnow


class SmithCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)


class SmithUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class SmithView(BaseModel):
    id: str
    agent_id: str
    name: str
    owner_identity: str | None
    minted_by_deployment_id: str | None
    provider_identity: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, smith: Smith) -> SmithView:
        return cls(
            id=smith.id, agent_id=smith.agent_id, name=smith.name,
            owner_identity=smith.owner_identity,
            minted_by_deployment_id=smith.minted_by_deployment_id,
            provider_identity=smith.provider_identity,
            created_at=smith.created_at.isoformat(), updated_at=smith.updated_at.isoformat(),
        )


async def create_smith(session: AsyncSession, *, actor: Actor, body: SmithCreate) -> Smith:
    actor.require_admin()
    agent = await get_agent(session, actor=actor, agent_id=body.agent_id)
    smith = Smith(id=new_id("smt"), project_id=actor.project_id, agent_id=agent.id,
                  name=body.name.strip())
    session.add(smith)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="smith.created",
                       smith_id=smith.id, data={"smith_id": smith.id, "agent_id": agent.id,
                                                "name": smith.name})
    return smith


async def get_smith(session: AsyncSession, *, actor: Actor, smith_id: str) -> Smith:
    actor.require_smith(smith_id)
    smith = await session.get(Smith, smith_id)
    if smith is None or smith.project_id != actor.project_id:
        raise NotFound(f"no smith {smith_id}", code="smith_not_found")
    return smith


async def list_smiths(
    session: AsyncSession, *, actor: Actor, agent_id: str | None = None,
    limit: int | None = None, cursor: str | None = None,
) -> Page[Smith]:
    stmt = select(Smith).where(Smith.project_id == actor.project_id)
    if not actor.is_admin:
        stmt = stmt.where(Smith.id == actor.smith_id)
    if agent_id:
        stmt = stmt.where(Smith.agent_id == agent_id)
    return await paginate(session, stmt, Smith.id, limit=limit, cursor=cursor)


async def update_smith(
    session: AsyncSession, *, actor: Actor, smith_id: str, body: SmithUpdate
) -> Smith:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    if body.name is not None:
        smith.name = body.name.strip()
    smith.updated_at = utcnow()
    session.add(smith)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="smith.updated",
                       smith_id=smith.id, data={"smith_id": smith.id, "name": smith.name})
    return smith


async def delete_smith(session: AsyncSession, *, actor: Actor, smith_id: str) -> None:
    """Deletes the smith with its memory, threads, runs and schedules; revokes its tokens and
    deployments. One transaction: all of it or none."""
    actor.require_admin()
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    now = utcnow()
    run_ids = select(Run.id).where(Run.smith_id == smith.id)
    thread_ids = select(Thread.id).where(Thread.smith_id == smith.id)
    await session.execute(delete(RunEvent).where(RunEvent.run_id.in_(run_ids)))
    await session.execute(delete(Approval).where(Approval.run_id.in_(run_ids)))
    await session.execute(delete(Message).where(Message.thread_id.in_(thread_ids)))
    await session.execute(delete(Run).where(Run.smith_id == smith.id))
    await session.execute(delete(Thread).where(Thread.smith_id == smith.id))
    await session.execute(delete(MemoryEntry).where(MemoryEntry.smith_id == smith.id))
    await session.execute(delete(Schedule).where(Schedule.smith_id == smith.id))
    await session.execute(
        update(ApiToken).where(ApiToken.smith_id == smith.id, ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=now)
    )
    await revoke_smith_bindings(session, smith_id=smith.id)
    await session.delete(smith)
    await record_event(session, project_id=actor.project_id, type="smith.deleted",
                       smith_id=smith.id, data={"smith_id": smith.id, "name": smith.name})
