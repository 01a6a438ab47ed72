"""The project's Telegram integration (TG-1): validate the bot token, store it encrypted, and
register the webhook, or fall back to long polling when this server is not reachable by Telegram.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import tenant_setup
from app.services.actors import Actor
from app.services.integrations import IntegrationView, get_integration, open_secrets
from app.services.runtime import Runtime
from channels.telegram import TelegramChannel
from models import Integration

KIND = "telegram"


TelegramPut = TelegramChannel.Put


class TelegramView(BaseModel):
    configured: bool
    bot_username: str | None = None
    mode: str | None = Field(default=None, description="webhook or polling")
    webhook_url: str | None = None
    steps: list[str] = Field(default_factory=list)
    status: str | None = None
    last_error: str | None = None
    last_delivery_at: str | None = None
    bot_token: dict[str, Any] | None = Field(default=None, description="Only whether it is set and its last 4.")

    @classmethod
    def of(cls, integration: Integration | None, runtime: Runtime) -> TelegramView:
        if integration is None:
            return cls(configured=False)
        base = IntegrationView.of(integration, open_secrets(runtime.secrets, integration))
        public = integration.public
        return cls(configured=True, bot_username=public.get("bot_username"), mode=public.get("mode"),
                   webhook_url=public.get("webhook_url"), steps=list(public.get("steps", [])),
                   status=integration.status, last_error=integration.last_error,
                   last_delivery_at=base.last_delivery_at,
                   bot_token=base.secrets["bot_token"].model_dump() if "bot_token" in base.secrets else None)


async def connect(session: AsyncSession, *, actor: Actor, runtime: Runtime, body: TelegramPut) -> Integration:
    """TG-1 through the one tenant path (app/services/tenant_setup.py)."""
    await tenant_setup.connect(session, actor=actor, runtime=runtime, kind=KIND, body=body)
    return await get_integration(session, actor=actor, kind=KIND)


async def disconnect(session: AsyncSession, *, actor: Actor, runtime: Runtime) -> None:
    await tenant_setup.disconnect(session, actor=actor, runtime=runtime, kind=KIND)
