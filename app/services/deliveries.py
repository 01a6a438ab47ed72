"""The outbox as people see it: failed and unknown deliveries, and replaying one."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import Conflict, NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from jobs import commit_hooks
from models import OutboxEntry
from models.types import utcnow

STATUSES = ("pending", "sending", "sent", "dead", "unknown")


class DeliveryView(BaseModel):
    id: str
    kind: str
    status: str
    run_id: str | None
    deployment_id: str | None
    address: str
    attempts: int
    last_error: str | None
    provider_message_id: str | None
    created_at: str
    sent_at: str | None
    receipt: str | None = Field(default=None, description="What the provider reported after the send: sent, "
                                "delivered or read (WhatsApp's statuses); never downgraded.")
    receipt_at: str | None = None

    @classmethod
    def of(cls, entry: OutboxEntry) -> DeliveryView:
        return cls(id=entry.id, kind=entry.kind, status=entry.status, run_id=entry.run_id,
                   deployment_id=entry.deployment_id, address=entry.address, attempts=entry.attempts,
                   last_error=entry.last_error, provider_message_id=entry.provider_message_id,
                   created_at=entry.created_at.isoformat(),
                   sent_at=entry.sent_at.isoformat() if entry.sent_at else None, receipt=entry.receipt,
                   receipt_at=entry.receipt_at.isoformat() if entry.receipt_at else None)


async def list_deliveries(session: AsyncSession, *, actor: Actor, status: str | None = None,
                          run_id: str | None = None, limit: int | None = None,
                          cursor: str | None = None) -> Page[OutboxEntry]:
    actor.require_admin()
    stmt = select(OutboxEntry).where(OutboxEntry.project_id == actor.project_id)
    if status:
        stmt = stmt.where(OutboxEntry.status == status)
    if run_id:
        stmt = stmt.where(OutboxEntry.run_id == run_id)
    return await paginate(session, stmt, OutboxEntry.id, limit=limit, cursor=cursor)


async def replay(session: AsyncSession, *, actor: Actor, delivery_id: str) -> OutboxEntry:
    """Send a dead or unknown delivery again (a person decided the duplicate risk is fine)."""
    actor.require_admin()
    entry = await session.get(OutboxEntry, delivery_id)
    if entry is None or entry.project_id != actor.project_id:
        raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
    if entry.status not in ("dead", "unknown"):
        raise Conflict(f"delivery {entry.id} is {entry.status}; only dead or unknown ones can be replayed",
                       code="not_replayable")
    entry.status, entry.attempts, entry.next_attempt_at, entry.last_error = "pending", 0, utcnow(), None
    commit_hooks.on_commit(session, commit_hooks.OUTBOX_ADDED)  # the deliverer sends it once this commits
    await record_event(session, project_id=actor.project_id, type="delivery.replayed", run_id=entry.run_id,
                       deployment_id=entry.deployment_id, data={"outbox_id": entry.id, "by": actor.subject})
    return entry
