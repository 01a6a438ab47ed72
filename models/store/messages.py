"""A thread's messages as the agent loop reads and writes them: plain ``Turn`` tuples, one prebuilt
insert. Loading and flushing ORM objects cost the loop more than anything it did with them."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from models import Message
from models.store.hot import Hot, insert_all_columns
from models.types import new_id, utcnow

HISTORY_LIMIT = 60  # messages of earlier runs the loop reads (the most the model is ever shown)


class Turn(NamedTuple):
    """A message as the loop reasons over it."""

    id: str
    run_id: str | None
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    name: str | None


_MESSAGE = Message.__table__
_TURN = tuple(_MESSAGE.c[name] for name in Turn._fields)
_EARLIER_TURNS = (select(*_TURN).where(_MESSAGE.c.thread_id == bindparam("thread_id"),
                                       _MESSAGE.c.run_id < bindparam("run_id"))
                  .order_by(_MESSAGE.c.run_id.desc(), _MESSAGE.c.id.desc()).limit(HISTORY_LIMIT).subquery())
_RECENT_TURNS = Hot(union_all(
    select(*_EARLIER_TURNS.c),
    select(*_TURN).where(_MESSAGE.c.thread_id == bindparam("thread_id"), _MESSAGE.c.run_id == bindparam("run_id"))))
_INSERT_MESSAGE = insert_all_columns(_MESSAGE)


def message_row(*, thread_id: str, run_id: str, role: str, content: str, name: str | None = None,
                tool_calls: list[dict[str, Any]] | None = None, tool_call_id: str | None = None) -> dict[str, Any]:
    """A message row for ``insert_messages`` (every column: one prebuilt statement fits them all)."""
    return {"id": new_id("msg"), "thread_id": thread_id, "run_id": run_id, "role": role, "content": content,
            "tool_calls": tool_calls or [], "tool_call_id": tool_call_id, "name": name, "created_at": utcnow()}


def turn_of(row: dict[str, Any]) -> Turn:
    """The ``Turn`` a stored ``message_row`` reads back as."""
    return Turn(*(row[field] for field in Turn._fields))


async def insert_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store ``message_row``s in one driver call."""
    if rows:
        await _INSERT_MESSAGE.many(session, rows)


async def recent_turns(session: AsyncSession, *, thread_id: str | None, run_id: str) -> list[Turn]:
    """Every message of the run, after the last ``HISTORY_LIMIT`` messages of the thread's earlier
    runs, grouped by run and in order (one query over the index on thread, run and id)."""
    rows = await _RECENT_TURNS.all(session, {"thread_id": thread_id, "run_id": run_id})
    return sorted((Turn(*row) for row in rows), key=lambda turn: (turn.run_id or "", turn.id))
