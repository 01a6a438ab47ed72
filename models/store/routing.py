"""Who an inbound message is for and where a run may write: the routing reads.

Every inbound message and every run asks these, so they read ids and a few values, never ORM rows
(only minting a smith builds one, in ``app/services/routing.py``). Also here: which integration a
webhook or a send goes through, asked before every webhook's work and every reply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Deployment, Integration, Project, Run, Smith
from models.store.hot import Hot


class Candidate(NamedTuple):
    """A deployment that may answer a conversation: its exact smith binding or the kind's catch-all."""

    deployment_id: str
    target_type: str  # "smith" (a binding) or "agent" (a catch-all)
    target_id: str
    status: str
    owner_identity: str | None


class SmithOrigin(NamedTuple):
    """Where a smith came from: the catch-all that minted it and the sender it was minted for (if so)."""

    minted_by_deployment_id: str | None
    provider_identity: str | None


class SmithDeployment(NamedTuple):
    """An active deployment that reaches a smith: a binding of it, or the catch-all that minted it."""

    deployment_id: str
    project_id: str
    kind: str
    target_type: str
    address: str | None
    owner_identity: str | None
    bound_at: datetime | None


class IntegrationStamp(NamedTuple):
    """An integration's id and when it last changed: the channel hub's cache key."""

    id: str
    updated_at: datetime


class TenantIntegration(NamedTuple):
    """The integration a webhook names (by project slug and kind), and when it last changed."""

    id: str
    project_id: str
    kind: str
    updated_at: datetime


# One query for both a conversation's binding and the kind's catch-all: the binding wins (routing.resolve).
_BINDING_OR_CATCH_ALL = Hot(select(
    Deployment.id, Deployment.target_type, Deployment.target_id, Deployment.status, Deployment.owner_identity
).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.deleted_at.is_(None),  # type: ignore[union-attr]
    or_(and_(Deployment.target_type == "smith", Deployment.status == "active",
             Deployment.address == bindparam("address")),
        Deployment.target_type == "agent")).order_by(Deployment.id))
_SMITH_ID = Hot(select(Smith.id).where(Smith.id == bindparam("smith_id")))
_MINTED_ID = Hot(select(Smith.id).where(Smith.minted_by_deployment_id == bindparam("deployment_id"),
                                        Smith.provider_identity == bindparam("identity")))
_WAKE = Hot(select(Deployment.provider_metadata).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.address == bindparam("address"), Deployment.target_type == "smith", Deployment.status == "active"))
_SMITH_REACH = Hot(select(Smith.minted_by_deployment_id, Smith.provider_identity)
                   .where(Smith.id == bindparam("smith_id")))
_OF_SMITH = Hot(select(Deployment.id, Deployment.project_id, Deployment.kind, Deployment.target_type,
                       Deployment.address, Deployment.owner_identity, Deployment.bound_at).where(
    or_(and_(Deployment.target_type == "smith", Deployment.target_id == bindparam("smith_id")),
        Deployment.id == bindparam("minted_by")),
    Deployment.status == "active", Deployment.deleted_at.is_(None)))  # type: ignore[union-attr]
_LATEST_DEPLOYMENT_RUN = Hot(select(Run.deployment_id).where(
    Run.smith_id == bindparam("smith_id"), Run.source == "deployment").order_by(Run.id.desc()).limit(1))
_KIND = Hot(select(Deployment.kind).where(Deployment.id == bindparam("deployment_id")))
_STAMP = Hot(select(Integration.id, Integration.updated_at).where(Integration.project_id == bindparam("project_id"),
                                                                  Integration.kind == bindparam("kind")))
_INTEGRATION_OF_TENANT = Hot(
    select(Integration.id, Integration.project_id, Integration.kind, Integration.updated_at)
    .join(Project, Project.id == Integration.project_id)
    .where(Project.slug == bindparam("tenant"), Integration.kind == bindparam("kind")))


async def route_candidates(session: AsyncSession, *, project_id: str, kind: str, address: str) -> list[Candidate]:
    """The conversation's live smith binding and the kind's catch-all, by id (hot: every inbound message)."""
    rows = await _BINDING_OR_CATCH_ALL.all(session, {"project_id": project_id, "kind": kind, "address": address})
    return [Candidate(*row) for row in rows]


async def smith_exists(session: AsyncSession, *, smith_id: str) -> bool:
    """Whether the smith a binding names still exists (hot: every message to a bound conversation)."""
    return await _SMITH_ID.first(session, {"smith_id": smith_id}) is not None


async def minted_smith_id(session: AsyncSession, *, deployment_id: str, identity: str) -> str | None:
    """The smith a catch-all minted for this sender, if any (hot: every message through a catch-all)."""
    row = await _MINTED_ID.first(session, {"deployment_id": deployment_id, "identity": identity})
    return None if row is None else str(row[0])


async def binding_metadata(session: AsyncSession, *, project_id: str, kind: str,
                           address: str) -> dict[str, Any] | None:
    """The ``provider_metadata`` of the conversation's active smith binding; None without one, or when
    it is not an object (hot: every message that does not mention the smith)."""
    row = await _WAKE.first(session, {"project_id": project_id, "kind": kind, "address": address})
    return row[0] if row is not None and isinstance(row[0], dict) else None


async def smith_origin(session: AsyncSession, *, smith_id: str) -> SmithOrigin | None:
    """Who minted the smith and for whom; None when it does not exist (hot: every run, for its send
    tools and its reply)."""
    row = await _SMITH_REACH.first(session, {"smith_id": smith_id})
    return None if row is None else SmithOrigin(*row)


async def deployments_of_smith(session: AsyncSession, *, smith_id: str,
                               minted_by: str | None) -> list[SmithDeployment]:
    """Active deployments bound to the smith, and ``minted_by`` (the catch-all that minted it) if active
    (hot: every run, for its send tools and its reply)."""
    rows = await _OF_SMITH.all(session, {"smith_id": smith_id, "minted_by": minted_by or ""})
    return [SmithDeployment(*row) for row in rows]


async def latest_run_deployment(session: AsyncSession, *, smith_id: str) -> str | None:
    """The deployment whose message started the smith's latest run (hot: every scheduled or API run's
    reply asks, to find the smith's most recently active conversation)."""
    row = await _LATEST_DEPLOYMENT_RUN.first(session, {"smith_id": smith_id})
    return row[0] if row else None


async def deployment_kind(session: AsyncSession, *, deployment_id: str) -> str | None:
    """The kind of a deployment, also when revoked since: a run started before still replies (hot: every
    reply and approval prompt)."""
    row = await _KIND.first(session, {"deployment_id": deployment_id})
    return None if row is None else str(row[0])


async def integration_stamp(session: AsyncSession, *, project_id: str, kind: str) -> IntegrationStamp | None:
    """The project's integration of this kind, as the channel hub's cache key (hot: every reply and
    delivery asks; the row is loaded only when its channel must be rebuilt)."""
    row = await _STAMP.first(session, {"project_id": project_id, "kind": kind})
    return None if row is None else IntegrationStamp(*row)


async def integration_of_tenant(session: AsyncSession, *, tenant: str, kind: str) -> TenantIntegration | None:
    """The integration of the project with slug ``tenant`` (hot: the first statement of every webhook's
    transaction; the row is loaded only when its channel must be rebuilt)."""
    row = await _INTEGRATION_OF_TENANT.first(session, {"tenant": tenant, "kind": kind})
    return None if row is None else TenantIntegration(*row)
