"""The project's Telegram integration (TG-1): validate the bot token, store it encrypted, and
register the webhook, or fall back to long polling when this server is not reachable by Telegram.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.actors import Actor
from app.services.channel_hub import api_url_for, get_hub
from app.services.errors import DomainError, Invalid
from app.services.events import record_event
from app.services.integrations import IntegrationView, get_integration, open_secrets, save_integration
from app.services.runtime import Runtime
from channels.base import SetupError
from channels.telegram import TOKEN_RE, TelegramChannel
from models import Integration, Project

KIND = "telegram"


class TelegramPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bot_token: str = Field(min_length=10, max_length=200, pattern=TOKEN_RE, description="From @BotFather.")


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


def webhook_url(runtime: Runtime, project: Project) -> str:
    return f"{runtime.settings.public_url}/v1/telegram/webhook/{project.slug}"


async def end_transaction(session: AsyncSession) -> None:
    """Commit what the caller's transaction did so far (the token check, the reads): a provider is
    never called while a transaction is open, since on SQLite every other transaction of the process
    would wait for it (models/inline_sqlite.py's watchdog catches any that does). The session goes on
    in a new, short transaction, which the caller commits as usual."""
    await session.commit()


async def connect(session: AsyncSession, *, actor: Actor, runtime: Runtime, body: TelegramPut) -> Integration:
    """Check the token with Telegram and register the webhook (no transaction open meanwhile), then
    store the integration."""
    actor.require_admin()
    project = await session.get(Project, actor.project_id)
    assert project is not None
    url = webhook_url(runtime, project)
    await end_transaction(session)
    secrets = {"bot_token": body.bot_token, **TelegramChannel.generated_secrets()}
    channel = TelegramChannel({}, secrets, api_url=api_url_for(runtime, KIND))
    try:
        info = await channel.setup(webhook_url=url)
    except SetupError as exc:
        if exc.code == "invalid_token":
            raise Invalid("Telegram rejected this bot token; copy it again from @BotFather",
                          code="invalid_bot_token", field="bot_token") from exc
        raise DomainError(str(exc), code=exc.code) from exc
    finally:
        await channel.aclose()
    public = {"bot_username": info.bot_username, "bot_id": info.details.get("bot_id"), "mode": info.mode,
              "webhook_url": info.webhook_url, "steps": info.steps}
    integration = await save_integration(session, actor=actor, box=runtime.secrets, kind=KIND, secrets=secrets,
                                         public=public, status="connected")
    get_hub(runtime).forget_tenants()
    return integration


async def disconnect(session: AsyncSession, *, actor: Actor, runtime: Runtime) -> None:
    """Remove the webhook at Telegram (no transaction open meanwhile), then delete the integration."""
    integration = await get_integration(session, actor=actor, kind=KIND)
    channel = await get_hub(runtime).for_integration(integration)
    await end_transaction(session)
    await channel.teardown()
    integration = await get_integration(session, actor=actor, kind=KIND)  # still there, in the new transaction
    await session.delete(integration)
    await record_event(session, project_id=actor.project_id, type="integration.deleted", data={"kind": KIND})
    get_hub(runtime).forget_tenants()
