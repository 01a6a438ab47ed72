"""A thread's messages as the agent loop and the run services read and write them.

The loop holds messages as ``Turn`` tuples and writes them with one prebuilt insert: loading and
flushing ORM objects cost it more than anything it did with them. It reads all of its own run's
messages and only the last ``HISTORY_LIMIT`` of earlier runs (``recent_turns``); the console and the
API read the whole thread (``thread_history``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.identity import platform_line
from jobs.tools import ToolError, chip_labels
from models import Message, Run
from models.hot import Hot, flush_pending, insert_all_columns
from models.types import new_id, utcnow

HISTORY_LIMIT = 60


def new_nonce() -> str:
    return secrets.token_hex(6)


async def thread_history(session: AsyncSession, run: Run) -> list[Message]:
    """The thread as this run sees it: earlier runs' messages, then its own, each in order.

    Grouped by run, not by time: a later message's input is stored when it arrives, before this
    run's reply exists, and must neither come before that reply nor be seen by this run at all.
    """
    params = {"thread_id": run.thread_id, "run_id": run.id}
    return list((await session.execute(_HISTORY, params)).scalars())


_HISTORY = (select(Message).where(Message.thread_id == bindparam("thread_id"), Message.run_id <= bindparam("run_id"))
            .order_by(Message.run_id, Message.id))


class Turn(NamedTuple):
    """A message as the loop reasons over it, read or written by the loop: a plain tuple, because
    loading and flushing ORM objects cost the loop more than anything it did with them."""

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
# Hot statements (models/hot.py): the loop holds messages as Turns, never as ORM objects.
_RECENT_TURNS = Hot(union_all(
    select(*_EARLIER_TURNS.c),
    select(*_TURN).where(_MESSAGE.c.thread_id == bindparam("thread_id"), _MESSAGE.c.run_id == bindparam("run_id"))))
_INSERT_MESSAGE = insert_all_columns(_MESSAGE)


def message_row(*, thread_id: str, run_id: str, role: str, content: str, name: str | None = None,
                tool_calls: list[dict[str, Any]] | None = None, tool_call_id: str | None = None) -> dict[str, Any]:
    """A message row for ``insert_messages`` (every column: one prebuilt statement fits them all)."""
    return {"id": new_id("msg"), "thread_id": thread_id, "run_id": run_id, "role": role, "content": content,
            "tool_calls": tool_calls or [], "tool_call_id": tool_call_id, "name": name, "created_at": utcnow()}


async def insert_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store message rows in one driver call: building and flushing ORM objects cost more than the insert."""
    if rows:
        await flush_pending(session)  # their run and thread may be new in this transaction
        await _INSERT_MESSAGE.many(session, rows)


def platform_message_row(run_id: str, thread_id: str, sender: dict[str, Any], nonce: str) -> dict[str, Any]:
    """ID-1: the platform line about the channel-authenticated sender, stored before their message."""
    return message_row(thread_id=thread_id, run_id=run_id, role="system", name="platform",
                       content=platform_line(sender, nonce))


async def recent_turns(session: AsyncSession, run: Run) -> list[Turn]:
    """What the loop needs of the thread: every message of this run (it reasons over its own steps)
    after the last HISTORY_LIMIT messages of earlier runs (the model never sees more), in
    ``thread_history``'s order. A long chat does not load its whole past on every run."""
    await flush_pending(session)
    rows = await _RECENT_TURNS.all(session, {"thread_id": run.thread_id, "run_id": run.id})
    return sorted((Turn(*row) for row in rows), key=lambda turn: (turn.run_id or "", turn.id))


def to_model_message(message: Message | Turn) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = message.tool_calls
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def trim_history(history: list[Turn]) -> list[Turn]:
    """The most recent messages, never starting with an orphaned tool result."""
    recent = history[-HISTORY_LIMIT:]
    while recent and recent[0].role in {"tool", "assistant"}:
        recent = recent[1:]
    return recent


def pending_calls(messages: Sequence[Message | Turn]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant message that have no result yet."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "assistant":
            answered = {m.tool_call_id for m in messages[index + 1:] if m.role == "tool"}
            return [c for c in message.tool_calls if c["id"] not in answered]
        if message.role != "tool":
            return []
    return []


def suggested_replies_of(messages: list[Turn], run_id: str) -> list[str]:
    """The chips of the run: its last successful suggest_replies call (CHIP-5)."""
    ok_results = {m.tool_call_id for m in messages
                  if m.role == "tool" and m.run_id == run_id and m.content.startswith("Offered")}
    chips: list[str] = []
    for message in messages:
        if message.run_id != run_id or message.role != "assistant":
            continue
        for call in message.tool_calls:
            if call["function"]["name"] == "suggest_replies" and call["id"] in ok_results:
                try:
                    chips = chip_labels(json.loads(call["function"]["arguments"]))
                except (ToolError, ValueError):
                    continue
    return chips
