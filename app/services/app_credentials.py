"""The sealed credentials of apps minted at a provider (``ProviderApp``): what the channel hub attaches to
a channel so each app's requests are verified with its own secret and its installs use its own client."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import SecretBox
from models import ProviderApp


def _bound_to(row: ProviderApp) -> str:
    return f"provider_app:{row.id}:{row.kind}"


def seal_app_secrets(box: SecretBox, row: ProviderApp, secrets: dict[str, str]) -> None:
    row.secrets_ciphertext = box.encrypt(json.dumps(secrets), bound_to=_bound_to(row)) if secrets else ""


def open_app_secrets(box: SecretBox, row: ProviderApp) -> dict[str, str]:
    if not row.secrets_ciphertext:
        return {}
    return dict(json.loads(box.decrypt(row.secrets_ciphertext, bound_to=_bound_to(row))))


async def apps_for_hub(session: AsyncSession, box: SecretBox, integration_id: str) -> dict[str, dict[str, Any]]:
    """The live apps' public fields and secrets, keyed by our row id (the ``app`` of their request URLs)."""
    rows = (await session.execute(select(ProviderApp).where(
        ProviderApp.integration_id == integration_id, ProviderApp.status == "live"))).scalars()
    return {row.id: {**row.public, "name": row.name, **open_app_secrets(box, row)} for row in rows}
