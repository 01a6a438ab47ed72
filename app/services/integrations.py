"""Per-project provider credentials. Secrets are sealed to their row; views show only hints."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import SecretBox
from app.services.actors import Actor
from app.services.errors import NotFound
from app.services.events import record_event
from models import Integration
from models.types import new_id, utcnow


class SecretHint(BaseModel):
    set: bool
    last4: str


class IntegrationView(BaseModel):
    id: str
    kind: str
    status: str
    public: dict[str, Any]
    secrets: dict[str, SecretHint]
    last_error: str | None
    last_delivery_at: str | None
    updated_at: str

    @classmethod
    def of(cls, integration: Integration, secrets: dict[str, str]) -> IntegrationView:
        return cls(
            id=integration.id, kind=integration.kind, status=integration.status,
            public=integration.public,
            secrets={k: SecretHint(set=bool(v), last4=v[-4:] if len(v) >= 12 else "")
                     for k, v in secrets.items()},
            last_error=integration.last_error,
            last_delivery_at=integration.last_delivery_at.isoformat()
            if integration.last_delivery_at else None,
            updated_at=integration.updated_at.isoformat(),
        )


def _bound_to(integration: Integration) -> str:
    return f"integration:{integration.id}:{integration.kind}"


def open_secrets(box: SecretBox, integration: Integration) -> dict[str, str]:
    if not integration.secrets_ciphertext:
        return {}
    return dict(json.loads(box.decrypt(integration.secrets_ciphertext,
                                       bound_to=_bound_to(integration))))


async def save_integration(
    session: AsyncSession, *, actor: Actor, box: SecretBox, kind: str, secrets: dict[str, str],
    public: dict[str, Any], status: str = "configured",
) -> Integration:
    """Create or replace the kind's integration with exactly these secrets (the caller merged in those it
    keeps: app.services.tenant_setup.connect)."""
    actor.require_admin()
    integration = await find_integration(session, project_id=actor.project_id, kind=kind)
    if integration is None:
        integration = Integration(id=new_id("int"), project_id=actor.project_id, kind=kind)
    merged = dict(secrets)
    integration.secrets_ciphertext = box.encrypt(json.dumps(merged), bound_to=_bound_to(integration))
    integration.public = public
    integration.status = status
    integration.last_error = None  # connected again: an earlier failure (a refused token) is over
    integration.updated_at = utcnow()
    session.add(integration)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="integration.updated",
                       data={"kind": kind, "status": status, "public": public,
                             "secrets_set": sorted(merged)})
    return integration


def reseal(box: SecretBox, integration: Integration, changes: dict[str, str], removed: frozenset[str] = frozenset()
           ) -> None:
    """Seal the integration's secrets again with ``changes`` merged in and ``removed`` taken out."""
    merged = {k: v for k, v in {**open_secrets(box, integration), **changes}.items() if k not in removed}
    integration.secrets_ciphertext = box.encrypt(json.dumps(merged), bound_to=_bound_to(integration))


async def store_renewed(session: AsyncSession, *, box: SecretBox, integration: Integration,
                        secrets: dict[str, str], public: dict[str, Any]) -> None:
    """Credentials the channel renewed on its own (a rotated token and its new refresh token): merged into
    the sealed secrets in the caller's transaction, with the public details; every process's channel hub
    rebuilds on the new ``updated_at``."""
    reseal(box, integration, secrets)
    integration.public = {**integration.public, **public}
    integration.updated_at = utcnow()
    await record_event(session, project_id=integration.project_id, type="integration.credentials_renewed",
                       data={"kind": integration.kind, "public": {k: v for k, v in public.items() if v != ""}})


_INTEGRATION = select(Integration).where(Integration.project_id == bindparam("project_id"),
                                        Integration.kind == bindparam("kind"))  # built once: runs use it


async def find_integration(session: AsyncSession, *, project_id: str, kind: str) -> Integration | None:
    return (await session.execute(_INTEGRATION, {"project_id": project_id, "kind": kind})).scalar_one_or_none()


async def list_integrations(session: AsyncSession, *, actor: Actor) -> list[Integration]:
    actor.require_admin()
    stmt = select(Integration).where(Integration.project_id == actor.project_id).order_by(Integration.kind)
    return list((await session.execute(stmt)).scalars())


async def get_integration(session: AsyncSession, *, actor: Actor, kind: str) -> Integration:
    actor.require_admin()
    integration = await find_integration(session, project_id=actor.project_id, kind=kind)
    if integration is None:
        raise NotFound(f"no {kind} integration is configured", code="integration_not_found")
    return integration
