"""When a person last wrote in each conversation, for channels that may answer only within a window after
that (``Channel.reply_window``: WhatsApp's 24 hours, WA-4).

Inbound handling notes every new message (one upsert, only for such channels); the outbox reads it before
each send (``models/store/inbound.py``'s ``last_inbound_at``) and fails a send outside the window at once,
with the channel's reason, instead of asking the provider (which would refuse it: Graph's 131047); the
console shows each conversation's window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ConversationActivity
from models.store.inbound import note_inbound_at
from models.types import utcnow


async def note_inbound(session: AsyncSession, *, project_id: str, kind: str, address: str,
                       at: datetime | None = None) -> None:
    """The person wrote in the conversation (now, unless ``at`` says when): its window opens again."""
    await note_inbound_at(session, project_id=project_id, kind=kind, address=address, at=at or utcnow())


async def last_inbound_of(session: AsyncSession, *, project_id: str, kind: str,
                          addresses: Iterable[str]) -> dict[str, datetime]:
    """Each address's last message (those that never wrote are absent): for the console's lists."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    rows = await session.execute(select(ConversationActivity.address, ConversationActivity.last_inbound_at).where(
        ConversationActivity.project_id == project_id, ConversationActivity.kind == kind,
        ConversationActivity.address.in_(wanted)))  # type: ignore[attr-defined]
    return {address: at for address, at in rows.all()}
