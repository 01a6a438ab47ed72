"""Tools the agent may call: each declares a JSON schema; the agent decides which need approval.

Built in: ``suggest_replies`` (quick-reply chips, CHIP-1/CHIP-5) and memory read/write/list.
Channel send tools (``telegram_send_message``, ...) are added per run for the smith's bound
deployments (DEP-6) by the deployment layer through ``ToolContext.extra_tools``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.memory import MemoryLimitError, MemoryLimits, write_entry
from models import MemoryEntry
from models.store.runs import RunLike

MAX_CHIPS = 10
MAX_CHIP_LABEL = 19  # "keep labels under 20 characters"
MEMORY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")


class ToolError(Exception):
    """Told to the model as the tool's result; the run goes on."""


@dataclass
class ToolContext:
    session: AsyncSession
    run: RunLike
    step_key: str  # "<run id>:<tool call id>": the idempotency key of any side effect
    memory_limits: MemoryLimits = field(default_factory=MemoryLimits)


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[[ToolContext, dict[str, Any]], Awaitable[str]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # A read-only call over the network (a Slack search): run by the agent loop after the step's
    # transaction committed, like a remote model call, never inside it. Repeating it is harmless.
    fetch: Callable[[dict[str, Any]], Awaitable[str]] | None = None

    def spec(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def chip_labels(arguments: dict[str, Any]) -> list[str]:
    replies = arguments.get("replies")
    if not isinstance(replies, list) or not replies:
        raise ToolError("replies must be a non-empty list of short labels")
    labels = [str(r).strip() for r in replies]
    if len(labels) > MAX_CHIPS:
        raise ToolError(f"offer at most {MAX_CHIPS} replies")
    for label in labels:
        if not label or len(label) > MAX_CHIP_LABEL:
            raise ToolError(f"each reply must be 1-{MAX_CHIP_LABEL} characters: {label!r}")
    return labels


async def _suggest_replies(ctx: ToolContext, args: dict[str, Any]) -> str:
    labels = chip_labels(args)
    return "Offered quick replies: " + " | ".join(labels)


def _memory_key(args: dict[str, Any]) -> str:
    key = str(args.get("key", "")).strip()
    if not MEMORY_KEY.match(key):
        raise ToolError("key must be 1-200 characters of letters, digits and . _ : / -")
    return key


async def _memory_read(ctx: ToolContext, args: dict[str, Any]) -> str:
    key = _memory_key(args)
    entry = (await ctx.session.execute(
        select(MemoryEntry).where(MemoryEntry.smith_id == ctx.run.smith_id, MemoryEntry.key == key)
    )).scalar_one_or_none()
    return f"{key} = {entry.value}" if entry else f"Nothing is remembered under {key}."


async def _memory_write(ctx: ToolContext, args: dict[str, Any]) -> str:
    key = _memory_key(args)
    try:  # the same function and caps as the API's PUT (jobs/memory.py)
        await write_entry(ctx.session, project_id=ctx.run.project_id, smith_id=ctx.run.smith_id, key=key,
                          value=str(args.get("value", "")), limits=ctx.memory_limits, run_id=ctx.run.id)
    except MemoryLimitError as exc:
        raise ToolError(f"{exc} ({exc.code})") from exc
    return f"Remembered {key}."


async def _memory_list(ctx: ToolContext, args: dict[str, Any]) -> str:
    keys = (await ctx.session.execute(
        select(MemoryEntry.key).where(MemoryEntry.smith_id == ctx.run.smith_id).order_by(MemoryEntry.key)
    )).scalars().all()
    return json.dumps(list(keys))


BUILTIN_TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("suggest_replies",
             "Offer the person a few short quick replies (chips) alongside your message. Use for clear "
             "choices (yes/no, a short menu), not open questions. Each label under 20 characters.",
             {"type": "object", "properties": {"replies": {
                 "type": "array", "items": {"type": "string", "maxLength": MAX_CHIP_LABEL},
                 "minItems": 1, "maxItems": MAX_CHIPS}}, "required": ["replies"]},
             _suggest_replies),
        Tool("memory_read", "Read one of your memory entries by key.",
             {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
             _memory_read),
        Tool("memory_write", "Remember something under a key (overwrites).",
             {"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
              "required": ["key", "value"]},
             _memory_write),
        Tool("memory_list", "List the keys of your memory entries.",
             {"type": "object", "properties": {}}, _memory_list),
    )
}
