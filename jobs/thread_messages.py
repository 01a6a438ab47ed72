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
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.identity import platform_line
from jobs.tools import ToolError, chip_labels
from models import Message
from models.store import messages as store
from models.store.messages import HISTORY_LIMIT, Turn, message_row
from models.store.runs import RunLike


def new_nonce() -> str:
    return secrets.token_hex(6)


async def thread_history(session: AsyncSession, run: RunLike) -> list[Message]:
    """The thread as this run sees it: earlier runs' messages, then its own, each in order.

    Grouped by run, not by time: a later message's input is stored when it arrives, before this
    run's reply exists, and must neither come before that reply nor be seen by this run at all.
    """
    params = {"thread_id": run.thread_id, "run_id": run.id}
    return list((await session.execute(_HISTORY, params)).scalars())


_HISTORY = (select(Message).where(Message.thread_id == bindparam("thread_id"), Message.run_id <= bindparam("run_id"))
            .order_by(Message.run_id, Message.id))


def platform_message_row(run_id: str, thread_id: str, sender: dict[str, Any], nonce: str) -> dict[str, Any]:
    """ID-1: the platform line about the channel-authenticated sender, stored before their message."""
    return message_row(thread_id=thread_id, run_id=run_id, role="system", name="platform",
                       content=platform_line(sender, nonce))


async def recent_turns(session: AsyncSession, run: RunLike) -> list[Turn]:
    """What the loop needs of the thread: every message of this run (it reasons over its own steps)
    after the last HISTORY_LIMIT messages of earlier runs (the model never sees more), in
    ``thread_history``'s order. A long chat does not load its whole past on every run."""
    return await store.recent_turns(session, thread_id=run.thread_id, run_id=run.id)


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
