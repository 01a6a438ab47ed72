"""A smith's memory entries: keyed text the agent reads and writes (and MCP exposes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import NotFound
from app.services.events import record_event
from app.services.smiths import get_smith
from models import MemoryEntry
from models.types import new_id, utcnow

MAX_VALUE_CHARS = 100_000
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"


class MemoryPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(max_length=MAX_VALUE_CHARS)


class MemoryView(BaseModel):
    key: str
    value: str
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, entry: MemoryEntry) -> MemoryView:
        return cls(key=entry.key, value=entry.value, created_at=entry.created_at.isoformat(),
                   updated_at=entry.updated_at.isoformat())


def _check_key(key: str) -> None:
    import re

    from app.services.errors import Invalid

    if not re.fullmatch(KEY_PATTERN, key):
        raise Invalid(f"memory key must match {KEY_PATTERN}", code="invalid_memory_key",
                      field="key")


async def list_memory(session: AsyncSession, *, actor: Actor, smith_id: str) -> list[MemoryEntry]:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id).order_by(MemoryEntry.key)
    return list((await session.execute(stmt)).scalars())


async def get_memory(session: AsyncSession, *, actor: Actor, smith_id: str, key: str) -> MemoryEntry:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id, MemoryEntry.key == key)
    entry = (await session.execute(stmt)).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"no memory entry {key!r}", code="memory_not_found")
    return entry


async def put_memory(
    session: AsyncSession, *, actor: Actor, smith_id: str, key: str, value: str
) -> MemoryEntry:
    _check_key(key)
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id, MemoryEntry.key == key)
    entry = (await session.execute(stmt)).scalar_one_or_none()
    if entry is None:
        entry = MemoryEntry(id=new_id("mem"), smith_id=smith.id, key=key, value=value)
    else:
        entry.value = value
        entry.updated_at = utcnow()
    session.add(entry)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="memory.updated",
                       smith_id=smith.id, data={"smith_id": smith.id, "key": key})
    return entry


async def delete_memory(session: AsyncSession, *, actor: Actor, smith_id: str, key: str) -> None:
    entry = await get_memory(session, actor=actor, smith_id=smith_id, key=key)
    await session.delete(entry)
    await record_event(session, project_id=actor.project_id, type="memory.deleted",
                       smith_id=smith_id, data={"smith_id": smith_id, "key": key})
