"""How an outbox entry ends when it was not simply sent: a dead letter or an unknown outcome, on its run's
timeline and in the event feed; and what a send refused for the credentials says about the integration."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.redact import redact
from jobs.events import append_event, append_run_event
from models import Integration, OutboxEntry

FAILING = "error"  # Integration.status while the provider refuses its credentials


async def finish_entry(session: AsyncSession, entry: OutboxEntry, status: str, error: str | None) -> None:
    """Settle an entry as ``dead`` or ``unknown`` (or ``sent``), on its run's timeline and, when it failed,
    in the project's event feed: also for a failure the provider reports after the send (jobs.receipts)."""
    error = redact(error) if error else error  # what the console and the API show: no credentials
    entry.status = status
    entry.last_error = error
    data = {"outbox_id": entry.id, "kind": entry.kind, "status": status, "error": error,
            "provider_message_id": entry.provider_message_id}
    if entry.run_id:
        await append_run_event(session, run_id=entry.run_id, type=f"delivery.{status}", data=data)
    if status != "sent":
        await append_event(session, project_id=entry.project_id, type="delivery.failed", run_id=entry.run_id,
                           deployment_id=entry.deployment_id, data=data)


async def mark_integration_failing(session: AsyncSession, *, project_id: str, kind: str, reason: str) -> None:
    """The provider refused the integration's credentials (an expired or revoked token: every send will
    fail): say so at once on the integration (the console's card, ``GET /v1/tenant/{kind}``) and in the
    event feed, once per change of reason, rather than only through dead letters. Reconnecting clears it."""
    reason = redact(reason)
    changed = await session.execute(update(Integration).where(
        Integration.project_id == project_id, Integration.kind == kind,
        (Integration.last_error.is_(None)) | (Integration.last_error != reason),  # type: ignore[union-attr]
    ).values(status=FAILING, last_error=reason))
    if changed.rowcount:  # type: ignore[attr-defined]
        await append_event(session, project_id=project_id, type="integration.error",
                           data={"kind": kind, "error": reason})
