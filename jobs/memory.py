"""Writing a smith's memory entry: the one function the API, the console and the agent's
``memory_write`` tool all go through, so the caps hold on every path.

Caps (settings, issue 13 §6): entries per smith (``memory_full``) and characters per value
(``memory_value_too_large``). The entry count is read before inserting a new key: concurrent writers
of different new keys may pass it together on PostgreSQL, so the cap is exact on SQLite (one writer)
and can be exceeded by the number of concurrent writers elsewhere, never without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.events import append_event
from models import MemoryEntry
from models.types import new_id, utcnow

MEMORY_FULL = "memory_full"
VALUE_TOO_LARGE = "memory_value_too_large"


@dataclass(frozen=True)
class MemoryLimits:
    max_entries: int = 1000
    max_value_chars: int = 100_000


class MemoryLimitError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_value(value: str, limits: MemoryLimits) -> None:
    if len(value) > limits.max_value_chars:
        raise MemoryLimitError(f"a memory value may hold at most {limits.max_value_chars} characters",
                               VALUE_TOO_LARGE)


async def write_entry(session: AsyncSession, *, project_id: str, smith_id: str, key: str, value: str,
                      limits: MemoryLimits, run_id: str | None = None) -> MemoryEntry:
    """Create or overwrite ``key``; a new key is refused once the smith holds ``max_entries``."""
    check_value(value, limits)
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith_id, MemoryEntry.key == key)
    entry = (await session.execute(stmt)).scalar_one_or_none()
    if entry is None:
        held = (await session.execute(
            select(func.count()).select_from(MemoryEntry).where(MemoryEntry.smith_id == smith_id))).scalar_one()
        if held >= limits.max_entries:
            raise MemoryLimitError(f"this smith already holds {held} memory entries (at most "
                                   f"{limits.max_entries}); delete some first", MEMORY_FULL)
        entry = MemoryEntry(id=new_id("mem"), smith_id=smith_id, key=key, value=value)
    else:
        entry.value = value
        entry.updated_at = utcnow()
    session.add(entry)
    await session.flush()
    await append_event(session, project_id=project_id, type="memory.updated", run_id=run_id,
                       smith_id=smith_id, data={"smith_id": smith_id, "key": key})
    return entry
