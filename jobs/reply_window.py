"""When a person last wrote in each conversation, for channels that may answer only within a window after
that (``Channel.reply_window``: WhatsApp's 24 hours, WA-4).

Inbound handling notes every new message (one upsert, only for such channels); the outbox reads it before
each send and fails a send outside the window at once, with the channel's reason, instead of asking the
provider (which would refuse it: Graph's 131047); the console shows each conversation's window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from models import ConversationActivity
from models.hot import Hot
from models.types import utcnow

_TABLE = ConversationActivity.__table__


def _upsert(dialect: str) -> ClauseElement:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = insert(_TABLE).values(project_id=bindparam("project_id"), kind=bindparam("kind"),
                                      address=bindparam("address"), last_inbound_at=bindparam("at"))
    # Never backwards: a message handled late must not shorten the window a later one opened.
    return statement.on_conflict_do_update(
        index_elements=["project_id", "kind", "address"],
        set_={"last_inbound_at": statement.excluded.last_inbound_at},
        where=_TABLE.c.last_inbound_at < statement.excluded.last_inbound_at)


_NOTE = Hot(_upsert)  # hot (models/hot.py): once per inbound WhatsApp message
_LAST = Hot(select(_TABLE.c.last_inbound_at).where(
    _TABLE.c.project_id == bindparam("project_id"), _TABLE.c.kind == bindparam("kind"),
    _TABLE.c.address == bindparam("address")))


async def note_inbound(session: AsyncSession, *, project_id: str, kind: str, address: str,
                       at: datetime | None = None) -> None:
    await _NOTE.rowcount(session, {"project_id": project_id, "kind": kind, "address": address,
                                   "at": at or utcnow()})


async def last_inbound_at(session: AsyncSession, *, project_id: str, kind: str, address: str) -> datetime | None:
    row = await _LAST.first(session, {"project_id": project_id, "kind": kind, "address": address})
    return row[0] if row else None


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
