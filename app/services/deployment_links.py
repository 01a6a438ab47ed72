"""What every new deployment needs, whoever makes it (app/services/deployments.py, and
app/services/provider_apps.py for a dedicated app's): its one-time start link and its creation event."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import Conflict
from app.services.events import record_event
from app.services.integrations import find_integration
from app.services.routing import hash_start_token
from channels import REGISTRY
from models import Deployment
from models.types import utcnow

START_TOKEN_TTL = timedelta(days=7)
LINK_MODES = frozenset({"start_token", "oauth_install"})  # provision links only where the app needs installing


def display_name(kind: str) -> str:
    channel_class = REGISTRY.get(kind)
    return channel_class.display_name if channel_class else kind


def new_start_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits, 32 characters of the URL-safe alphabet deep links take


async def issue_link(session: AsyncSession, deployment: Deployment) -> str:
    """A fresh one-time start link (the previous one stops working); only its hash is kept."""
    channel_class = REGISTRY.get(deployment.kind)
    integration = await find_integration(session, project_id=deployment.project_id, kind=deployment.kind)
    token = new_start_token()
    link = channel_class.start_link(integration.public if integration else {}, token) if channel_class else None
    if link is None:
        raise Conflict(f"connect {display_name(deployment.kind)} first (Settings → Integrations, or "
                       f"PUT /v1/tenant/{deployment.kind})",
                       code="integration_not_configured")
    deployment.start_token_hash = hash_start_token(token)
    deployment.start_token_expires_at = utcnow() + START_TOKEN_TTL
    return link


async def record_created(session: AsyncSession, deployment: Deployment) -> None:
    await record_event(session, project_id=deployment.project_id, type="deployment.created",
                       deployment_id=deployment.id,
                       smith_id=deployment.target_id if deployment.target_type == "smith" else None,
                       data={"deployment_id": deployment.id, "kind": deployment.kind,
                             "target": {"type": deployment.target_type, "id": deployment.target_id},
                             "status": deployment.status})
