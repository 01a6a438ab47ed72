"""The outbox's hot writes and read: queue a send once per idempotency key, mark sends done, and
whether a run's send tool wrote. The outbox's rows are never loaded as ORM objects in the
transactions that write them here (``jobs/delivery.py`` says how entries move)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import OutboxEntry
from models.store.hot import Hot, insert_once
from models.types import new_id, utcnow

_OUTBOX = OutboxEntry.__table__
_INSERT_ONCE = insert_once(_OUTBOX, conflict_on=("idempotency_key",))
_SENT = Hot(update(_OUTBOX).where(_OUTBOX.c.id == bindparam("entry_id"))
            .values(status="sent", last_error=None, provider_message_id=bindparam("provider_message_id"),
                    sent_at=bindparam("sent_at")))
_TOOL_SEND = Hot(select(OutboxEntry.id).where(
    OutboxEntry.run_id == bindparam("run_id"), OutboxEntry.idempotency_key.not_like(bindparam("prompts"))).limit(1))


def outbox_row(*, project_id: str, kind: str, address: str, payload: dict[str, Any], idempotency_key: str,
               run_id: str | None = None, deployment_id: str | None = None) -> dict[str, Any]:
    """A new entry's row, every column: pending, due now, never tried."""
    now = utcnow()
    return {"id": new_id("obx"), "project_id": project_id, "run_id": run_id, "deployment_id": deployment_id,
            "kind": kind, "idempotency_key": idempotency_key, "address": address, "payload": payload,
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
            "last_error": None, "provider_message_id": None, "sent_at": None, "receipt": None,
            "receipt_at": None}


async def insert_outbox_once(session: AsyncSession, *, project_id: str, kind: str, address: str,
                             payload: dict[str, Any], idempotency_key: str, run_id: str | None = None,
                             deployment_id: str | None = None) -> bool:
    """Queue a send; False when an entry with this key exists already (one statement, ON CONFLICT DO
    NOTHING; hot: every reply, prompt and send tool call). The run or deployment it names may be new in
    this transaction: the statement flushes them first."""
    row = outbox_row(project_id=project_id, kind=kind, address=address, payload=payload,
                     idempotency_key=idempotency_key, run_id=run_id, deployment_id=deployment_id)
    return bool(await _INSERT_ONCE.all(session, row))


async def mark_sent(session: AsyncSession, *, sent: Iterable[tuple[str, str | None]], sent_at: datetime) -> None:
    """Mark each ``(entry id, provider message id)`` sent, in one driver call (hot: every delivered send)."""
    await _SENT.many(session, [{"entry_id": entry_id, "sent_at": sent_at, "provider_message_id": provider_id}
                               for entry_id, provider_id in sent])


async def sent_by_tool(session: AsyncSession, *, run_id: str) -> bool:
    """Whether a send tool of the run queued a message; its approval prompts do not count (hot: asked
    once per scheduled or API run's final reply)."""
    return await _TOOL_SEND.first(session, {"run_id": run_id, "prompts": f"{run_id}:approval:%"}) is not None
