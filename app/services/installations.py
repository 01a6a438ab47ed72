"""Installations: the workspaces that installed an integration's app, each with its own tokens.

Slack's shared app serves many workspaces (Bolt's installation store: authorize per team). A
reinstall replaces that workspace's tokens; an uninstall revokes its deployments and deletes its
tokens. Any change touches the integration's ``updated_at``, so every process's channel hub rebuilds
the channel with the current installations (app/services/channel_hub.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import SecretBox
from app.services.bindings import revoke
from app.services.events import record_event
from models import Deployment, Installation, Integration
from models.types import new_id, utcnow

log = logging.getLogger("ingram.installations")


class InstallationView(BaseModel):
    id: str
    external_id: str
    name: str
    status: str
    installer: str | None
    scopes: list[str]
    user_scopes: list[str]
    created_at: str
    updated_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, row: Installation) -> InstallationView:
        return cls(id=row.id, external_id=row.external_id, name=row.name, status=row.status,
                   installer=row.public.get("installer"), scopes=list(row.public.get("scopes") or []),
                   user_scopes=list(row.public.get("user_scopes") or []), created_at=row.created_at.isoformat(),
                   updated_at=row.updated_at.isoformat(),
                   revoked_at=row.revoked_at.isoformat() if row.revoked_at else None)


def _bound_to(row: Installation) -> str:
    return f"installation:{row.id}:{row.kind}"


def open_installation_secrets(box: SecretBox, row: Installation) -> dict[str, str]:
    if not row.secrets_ciphertext:
        return {}
    return dict(json.loads(box.decrypt(row.secrets_ciphertext, bound_to=_bound_to(row))))


async def _touch_integration(session: AsyncSession, integration_id: str) -> None:
    await session.execute(update(Integration).where(Integration.id == integration_id).values(updated_at=utcnow()))


async def find_installation(session: AsyncSession, *, integration_id: str, external_id: str) -> Installation | None:
    return (await session.execute(select(Installation).where(
        Installation.integration_id == integration_id, Installation.external_id == external_id))).scalars().first()


async def save_installation(session: AsyncSession, *, box: SecretBox, integration: Integration, external_id: str,
                            name: str, public: dict[str, Any], secrets: dict[str, str]) -> Installation:
    """Create the workspace's installation, or replace its tokens on a reinstall (one row per workspace)."""
    row = await find_installation(session, integration_id=integration.id, external_id=external_id)
    now = utcnow()
    if row is None:
        row = Installation(id=new_id("ins"), project_id=integration.project_id, integration_id=integration.id,
                           kind=integration.kind, external_id=external_id, created_at=now)
    row.name, row.public, row.status, row.revoked_at, row.updated_at = name[:200], public, "active", None, now
    row.secrets_ciphertext = box.encrypt(json.dumps(secrets), bound_to=_bound_to(row))
    session.add(row)
    await session.flush()
    await _touch_integration(session, integration.id)
    return row


async def installations_for_hub(session: AsyncSession, box: SecretBox,
                                integration_id: str) -> dict[str, dict[str, Any]]:
    """The active installations' public fields and tokens, keyed by provider id (what a channel attaches)."""
    rows = (await session.execute(select(Installation).where(
        Installation.integration_id == integration_id, Installation.status == "active"))).scalars()
    return {row.external_id: {**row.public, **open_installation_secrets(box, row)} for row in rows}


async def list_installations(session: AsyncSession, *, integration_id: str) -> list[Installation]:
    return list((await session.execute(select(Installation).where(
        Installation.integration_id == integration_id).order_by(Installation.id))).scalars())


async def uninstall(session: AsyncSession, *, integration_id: str, external_id: str,
                    reason: str = "uninstalled") -> int:
    """SL-8: the workspace removed the app. Its tokens are deleted, its deployments revoked; returns how
    many deployments stopped. An unknown or already uninstalled workspace changes nothing."""
    row = await find_installation(session, integration_id=integration_id, external_id=external_id)
    if row is None or row.status != "active":
        log.warning("%s: uninstall for %s, which is not installed; nothing to do", row.kind if row else "?",
                    external_id)
        return 0
    now = utcnow()
    row.status, row.revoked_at, row.updated_at, row.secrets_ciphertext = "revoked", now, now, ""
    prefix = f"{external_id}:"
    deployments = list((await session.execute(select(Deployment).where(
        Deployment.project_id == row.project_id, Deployment.kind == row.kind, Deployment.status != "revoked",
        Deployment.address.startswith(prefix, autoescape=True)))).scalars())  # type: ignore[union-attr]
    for deployment in deployments:
        revoke(deployment, reason=reason)
    await _touch_integration(session, integration_id)
    await record_event(session, project_id=row.project_id, type=f"{row.kind}.uninstalled",
                       data={"installation_id": row.id, "team_id": external_id, "name": row.name,
                             "deployments_revoked": [d.id for d in deployments]})
    return len(deployments)


async def drop_user_tokens(session: AsyncSession, box: SecretBox, *, integration_id: str, external_id: str) -> None:
    """tokens_revoked for user tokens only: the bot keeps working, the user-token tools go away."""
    row = await find_installation(session, integration_id=integration_id, external_id=external_id)
    if row is None or row.status != "active":
        return
    secrets = open_installation_secrets(box, row)
    secrets.pop("user_token", None)
    row.secrets_ciphertext = box.encrypt(json.dumps(secrets), bound_to=_bound_to(row))
    row.public = {**row.public, "user_scopes": []}
    row.updated_at = utcnow()
    await _touch_integration(session, integration_id)


async def revoke_app_installations(session: AsyncSession, *, integration_id: str, app_id: str) -> None:
    """A deleted app's workspaces: their tokens died with it (``"<app id>:<team>"`` installations)."""
    rows = (await session.execute(select(Installation).where(
        Installation.integration_id == integration_id, Installation.status == "active",
        Installation.external_id.startswith(f"{app_id}:", autoescape=True)))).scalars()  # type: ignore[union-attr]
    now = utcnow()
    for row in rows:
        row.status, row.revoked_at, row.updated_at, row.secrets_ciphertext = "revoked", now, now, ""
    await _touch_integration(session, integration_id)
