"""What inbound traffic writes and reads first: the delivery record (once per provider id), the
paused run an owner's next message corrects, and when a person last wrote in a conversation (the
reply window of channels that have one, WA-4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from models import Approval, ConversationActivity, InboundDelivery, Run
from models.store.hot import Hot, insert_once
from models.types import new_id, utcnow

_ACTIVITY = ConversationActivity.__table__


class EditRequested(NamedTuple):
    """A smith's run paused on an approval whose owner asked to edit it (APR-2)."""

    run_id: str
    project_id: str
    run_metadata: dict[str, Any]


def _note(dialect: str) -> ClauseElement:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = insert(_ACTIVITY).values(project_id=bindparam("project_id"), kind=bindparam("kind"),
                                         address=bindparam("address"), last_inbound_at=bindparam("at"))
    # Never backwards: a message handled late must not shorten the window a later one opened.
    return statement.on_conflict_do_update(
        index_elements=["project_id", "kind", "address"],
        set_={"last_inbound_at": statement.excluded.last_inbound_at},
        where=_ACTIVITY.c.last_inbound_at < statement.excluded.last_inbound_at)


_INSERT_DELIVERY_ONCE = insert_once(InboundDelivery.__table__)
_EDIT_REQUESTED = Hot(select(Run.id, Run.project_id, Run.run_metadata).join(Approval, Approval.run_id == Run.id)
                      .where(Run.smith_id == bindparam("smith_id"), Run.status == "awaiting_approval",
                             Approval.status == "edit_requested"))
_NOTE = Hot(_note)
_LAST = Hot(select(_ACTIVITY.c.last_inbound_at).where(
    _ACTIVITY.c.project_id == bindparam("project_id"), _ACTIVITY.c.kind == bindparam("kind"),
    _ACTIVITY.c.address == bindparam("address")))


def inbound_delivery_row(*, project_id: str, integration_id: str, kind: str, dedupe_key: str,
                         payload: dict[str, Any]) -> dict[str, Any]:
    """A new delivery's row, every column (received now; no run yet)."""
    return {"id": new_id("inb"), "project_id": project_id, "integration_id": integration_id, "kind": kind,
            "dedupe_key": dedupe_key, "received_at": utcnow(), "run_id": None, "payload": payload}


async def insert_delivery_once(session: AsyncSession, *, project_id: str, integration_id: str, kind: str,
                               dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Record a provider's delivery; False for a redelivery (one statement, ON CONFLICT DO NOTHING; hot:
    the first write of every inbound item)."""
    row = inbound_delivery_row(project_id=project_id, integration_id=integration_id, kind=kind,
                               dedupe_key=dedupe_key, payload=payload)
    return bool(await _INSERT_DELIVERY_ONCE.all(session, row))


async def edit_requested_run(session: AsyncSession, *, smith_id: str) -> EditRequested | None:
    """The smith's run whose owner tapped Edit and owes the correction, if any (hot: every message of an
    owner). A tap earlier in the same transaction counts: the statement sees the session's changes."""
    row = await _EDIT_REQUESTED.first(session, {"smith_id": smith_id})
    return None if row is None else EditRequested(*row)


async def note_inbound_at(session: AsyncSession, *, project_id: str, kind: str, address: str,
                          at: datetime) -> None:
    """Record that the person wrote in the conversation at ``at``, never moving it back (hot: every
    inbound message of a channel with a reply window)."""
    await _NOTE.rowcount(session, {"project_id": project_id, "kind": kind, "address": address, "at": at})


async def last_inbound_at(session: AsyncSession, *, project_id: str, kind: str, address: str) -> datetime | None:
    """When the person last wrote in the conversation; None if never (hot: before every send of a
    channel with a reply window)."""
    row = await _LAST.first(session, {"project_id": project_id, "kind": kind, "address": address})
    return row[0] if row else None
