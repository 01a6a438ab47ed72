"""What a provider reports about messages after they were sent (WhatsApp's ``statuses``).

A delivery status names the message by the provider's id. ``sent``, ``delivered`` and ``read`` are kept on
the outbox entry (never downgraded: statuses may arrive out of order); ``failed`` (Graph's 131047, 131026,
...) turns the entry into a dead letter with the reason, on the run and in the event feed, as a failed send
would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.outcomes import finish_entry
from models import OutboxEntry
from models.types import utcnow

log = logging.getLogger("ingram.receipts")

RANK = {"sent": 1, "delivered": 2, "read": 3}


async def apply_delivery_status(session: AsyncSession, *, project_id: str, kind: str,
                                data: Mapping[str, Any]) -> str | None:
    """Record one status on its entry; returns the entry's id, or None when no entry carries that id
    (a message sent before this server, or whose send is still being recorded)."""
    pmid, status = str(data.get("provider_message_id") or ""), data.get("status")
    entry = (await session.execute(select(OutboxEntry).where(
        OutboxEntry.kind == kind, OutboxEntry.provider_message_id == pmid,
        OutboxEntry.project_id == project_id).limit(1))).scalar_one_or_none()
    if entry is None or not pmid:
        log.info("%s status %s for unknown message %s; ignored", kind, status, pmid)
        return None
    if status == "failed":
        if entry.status != "dead":
            await finish_entry(session, entry, "dead", str(data.get("error") or "failed: reported after sending"))
        return entry.id
    if status in RANK and RANK[status] > RANK.get(entry.receipt or "", 0):
        at = data.get("at")
        entry.receipt = status
        entry.receipt_at = at if isinstance(at, datetime) else utcnow()
    return entry.id
