"""Who may bind a conversation, and what a binding replaces (issue 13).

A conversation is bound to a smith only by proof that the person controls it (a deep-link tap: the
bind happens in ``routing.bind_start_token``) or by an admin naming a literal address. At most one
live smith binding exists per (project, kind, address), and at most one live catch-all per kind: both
are unique indexes (``uq_deployment_live_binding``, ``uq_deployment_live_catch_all``), so concurrent
creates or taps cannot both win. A proven binding to a new smith replaces the old one; an admin's
literal address never replaces anything silently (409 with the existing id).

Revoked deployments stay in the table and in lists, with a reason and a time.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.actors import Actor
from app.services.errors import Conflict, Forbidden, Invalid
from app.services.events import record_event
from channels import REGISTRY
from models import Deployment, Installation
from models.types import utcnow


async def live_binding(session: AsyncSession, *, project_id: str, kind: str, address: str) -> Deployment | None:
    return (await session.execute(select(Deployment).where(
        Deployment.project_id == project_id, Deployment.kind == kind, Deployment.address == address,
        Deployment.target_type == "smith", Deployment.status == "active"))).scalars().first()


def revoke(deployment: Deployment, *, reason: str) -> None:
    """The deployment stops answering now and stays listed as revoked, with why and when."""
    now = utcnow()
    deployment.status, deployment.revoked_reason, deployment.revoked_at = "revoked", reason, now
    deployment.deleted_at = deployment.deleted_at or now  # routing skips rows with deleted_at
    deployment.updated_at = now
    deployment.start_token_hash, deployment.start_token_expires_at = None, None


async def check_literal_address(session: AsyncSession, *, actor: Actor, project_id: str, kind: str,
                                address: str) -> str | None:
    """An admin may bind a literal address it names (SL-4's ``address: "C…"``); a smith token may not,
    because nothing proves that its holder controls that conversation. Returns the address's owner
    identity when the address alone proves it (a Telegram private chat)."""
    if not actor.is_admin:
        raise Forbidden("a smith token cannot bind a literal address; create a link (no address) and let "
                        "the person tap it", code="address_requires_admin", field="address")
    channel_class = REGISTRY.get(kind)
    problem = channel_class.address_problem(address) if channel_class else None
    if problem:
        raise Invalid(f"address: {problem}", code="invalid_address", field="address")
    existing = await live_binding(session, project_id=project_id, kind=kind, address=address)
    if existing is not None:
        raise Conflict(f"{address} is already bound by deployment {existing.id}; delete it first",
                       code="address_bound", details={"existing_id": existing.id})
    if channel_class is None:
        return None
    owner = channel_class.owner_of_address(address)
    installation = channel_class.installation_of(address)
    if installation is not None:  # a Slack conversation: its workspace must have installed the app
        installer = await _installer(session, project_id=project_id, kind=kind, external_id=installation)
        if installer is None:
            raise Invalid(f"address: {channel_class.display_name} workspace {installation} has not installed the "
                          "app; install it first (Add to Slack)", code="not_installed", field="address")
        owner = owner or installer or None  # ID-3: the installer decides in the conversations an admin bound
    return owner


async def _installer(session: AsyncSession, *, project_id: str, kind: str, external_id: str) -> str | None:
    """The owner identity of an active installation's installer, or None when it is not installed."""
    row = (await session.execute(select(Installation).where(
        Installation.project_id == project_id, Installation.kind == kind, Installation.external_id == external_id,
        Installation.status == "active"))).scalars().first()
    if row is None:
        return None
    installer = row.public.get("installer")
    team = external_id.rpartition(":")[2]  # a dedicated app's installation is "<app>:<team>"; people are per team
    return f"{kind}:{team}:{installer}" if installer else ""


async def replace_binding(session: AsyncSession, *, deployment: Deployment, address: str) -> Deployment | None:
    """Before ``deployment`` binds ``address`` by proof: the live binding there (to another smith, or
    an earlier link of the same one) is revoked as replaced. Returns it, or None."""
    old = await live_binding(session, project_id=deployment.project_id, kind=deployment.kind, address=address)
    if old is None or old.id == deployment.id:
        return None
    revoke(old, reason="replaced")
    await session.flush()  # the unique index must see the old binding gone before the new one is live
    await record_event(session, project_id=deployment.project_id, type="deployment.replaced",
                       deployment_id=old.id, smith_id=old.target_id,
                       data={"deployment_id": old.id, "replaced_by": deployment.id, "kind": deployment.kind,
                             "address": address, "smith_id": old.target_id, "new_smith_id": deployment.target_id})
    return old


async def revoke_catch_alls(session: AsyncSession, *, project_id: str, agent_id: str) -> list[str]:
    """An agent's live catch-alls stop answering when the agent is deleted (a sender must not reach
    an agent that no longer exists)."""
    rows = (await session.execute(select(Deployment).where(
        Deployment.project_id == project_id, Deployment.target_type == "agent", Deployment.target_id == agent_id,
        Deployment.status != "revoked"))).scalars().all()
    for deployment in rows:
        revoke(deployment, reason="agent_deleted")
        await record_event(session, project_id=project_id, type="deployment.revoked", deployment_id=deployment.id,
                           data={"deployment_id": deployment.id, "kind": deployment.kind, "reason": "agent_deleted"})
    return [d.id for d in rows]


async def revoke_smith_bindings(session: AsyncSession, *, smith_id: str) -> None:
    """A deleted smith's deployments stop answering (and stay listed, as revoked)."""
    for deployment in (await session.execute(select(Deployment).where(
            Deployment.target_type == "smith", Deployment.target_id == smith_id,
            Deployment.status != "revoked"))).scalars():
        revoke(deployment, reason="smith_deleted")
