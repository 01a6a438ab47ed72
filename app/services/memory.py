"""A smith's memory entries: keyed text the agent reads and writes (and MCP exposes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import Conflict, Invalid, NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from app.services.runtime import get_runtime
from app.services.smiths import get_smith
from app.settings import Settings
from jobs.memory import MEMORY_FULL, MemoryLimitError, MemoryLimits, write_entry
from models import MemoryEntry

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"


def memory_limits(settings: Settings) -> MemoryLimits:
    return MemoryLimits(max_entries=settings.memory_max_entries, max_value_chars=settings.memory_max_value_chars)


class MemoryPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The cap is IC_MEMORY_MAX_VALUE_CHARS, checked by the service (422 memory_value_too_large); this
    # bound only keeps an absurd body from being validated at all.
    value: str = Field(max_length=10_000_000)


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


async def list_memory(session: AsyncSession, *, actor: Actor, smith_id: str, limit: int | None = None,
                      cursor: str | None = None) -> Page[MemoryEntry]:
    """A page of the smith's entries, newest first, like every list (the cursor is the last id)."""
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id)
    return await paginate(session, stmt, MemoryEntry.id, limit=limit, cursor=cursor)


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
    try:  # the same function and caps as the agent's memory_write tool (jobs/memory.py)
        return await write_entry(session, project_id=actor.project_id, smith_id=smith.id, key=key, value=value,
                                 limits=memory_limits(get_runtime().settings))
    except MemoryLimitError as exc:
        error = Conflict if exc.code == MEMORY_FULL else Invalid
        raise error(str(exc), code=exc.code, field="value" if error is Invalid else None) from exc


async def delete_memory(session: AsyncSession, *, actor: Actor, smith_id: str, key: str) -> None:
    entry = await get_memory(session, actor=actor, smith_id=smith_id, key=key)
    await session.delete(entry)
    await record_event(session, project_id=actor.project_id, type="memory.deleted",
                       smith_id=smith_id, data={"smith_id": smith_id, "key": key})
