"""Connect a provider once per project: ``PUT/GET/DELETE /v1/tenant/{kind}`` and Settings → Integrations.

One path for every channel, from what the channel declares (``channels.base.Channel``): the body's
fields (``Put``; those named like ``Secrets`` fields are stored encrypted), the URLs the provider
must be given (``urls``), anything else to show first (``guide``: Slack's manifest) and the provider
check (``setup``: Telegram's getMe and setWebhook, Slack's auth.test).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.actors import Actor
from app.services.channel_hub import channel_from, get_hub
from app.services.errors import Conflict, DomainError, Invalid, NotFound
from app.services.events import record_event
from app.services.installations import InstallationView, list_installations, save_installation
from app.services.integrations import (
    IntegrationView,
    find_integration,
    get_integration,
    open_secrets,
    save_integration,
)
from app.services.runtime import Runtime
from channels import REGISTRY
from channels.base import Channel
from channels.errors import SetupError
from models import Installation, Integration, Project, ProviderApp
from models.types import utcnow


class IntegrationStatus(BaseModel):
    """An integration as the API and the console show it: never a secret, only whether each is set
    and its last 4. The channel's public fields and secret hints are added at the top level."""

    model_config = ConfigDict(extra="allow")
    kind: str
    configured: bool
    status: str | None = None
    mode: str | None = Field(default=None, description="webhook, polling or socket_mode")
    webhook_url: str | None = None
    urls: dict[str, str] = Field(default_factory=dict, description="What to paste at the provider.")
    guide: dict[str, Any] = Field(default_factory=dict, description="E.g. Slack's app manifest.")
    steps: list[str] = Field(default_factory=list)
    last_error: str | None = None
    last_delivery_at: str | None = None
    installations: list[InstallationView] = Field(default_factory=list)


def channel_class(kind: str) -> type[Channel]:
    found = REGISTRY.get(kind)
    if found is None:
        raise NotFound(f"no channel {kind!r}; known: {', '.join(sorted(REGISTRY))}", code="unknown_kind")
    return found


def urls_for(runtime: Runtime, project: Project, kind: str) -> dict[str, str]:
    return channel_class(kind).urls(runtime.settings.public_url, project.slug)


def status_of(kind: str, integration: Integration | None, runtime: Runtime, project: Project,
              installations: list[Installation] | None = None) -> IntegrationStatus:
    cls = channel_class(kind)
    urls = urls_for(runtime, project, kind)
    shown = {"kind": kind, "urls": urls, "guide": cls.guide(urls)}
    if integration is None:
        return IntegrationStatus(configured=False, **shown)
    base = IntegrationView.of(integration, open_secrets(runtime.secrets, integration))
    public = dict(integration.public)
    status = IntegrationStatus(
        configured=True, status=integration.status, mode=public.pop("mode", None),
        webhook_url=public.pop("webhook_url", None), steps=list(public.pop("steps", [])),
        last_error=integration.last_error, last_delivery_at=base.last_delivery_at,
        installations=[InstallationView.of(row) for row in installations or []], **shown)
    for name, value in public.items():
        if name not in IntegrationStatus.model_fields:
            setattr(status, name, value)
    for name, hint in base.secrets.items():
        if name in cls.Put.model_fields:  # generated secrets (a webhook secret) are not the person's business
            setattr(status, name, hint.model_dump())
    return status


async def show(session: AsyncSession, *, actor: Actor, runtime: Runtime, kind: str) -> IntegrationStatus:
    actor.require_admin()
    channel_class(kind)
    project = await session.get(Project, actor.project_id)
    assert project is not None
    integration = await find_integration(session, project_id=actor.project_id, kind=kind)
    rows = await list_installations(session, integration_id=integration.id) if integration else []
    return status_of(kind, integration, runtime, project, rows)


async def end_transaction(session: AsyncSession) -> None:
    """Commit what the caller's transaction did so far (the token check, the reads): a provider is
    never called while a transaction is open, since on SQLite every other transaction of the process
    would wait for it (models/inline_sqlite.py's watchdog catches any that does). The session goes on
    in a new, short transaction, which the caller commits as usual."""
    await session.commit()


def split_put(cls: type[Channel], body: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """The body's public fields and its secrets (fields named like the channel's ``Secrets``)."""
    public: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in body.model_dump(exclude_none=True).items():
        (secrets if name in cls.Secrets.model_fields else public)[name] = value
    return public, secrets


async def connect(session: AsyncSession, *, actor: Actor, runtime: Runtime, kind: str,
                  body: BaseModel) -> IntegrationStatus:
    """Check the credentials with the provider and register what can be registered (no transaction
    open meanwhile), then store the integration: secrets encrypted, merged with those already set."""
    actor.require_admin()
    cls = channel_class(kind)
    project = await session.get(Project, actor.project_id)
    assert project is not None
    existing = await find_integration(session, project_id=actor.project_id, kind=kind)
    kept = open_secrets(runtime.secrets, existing) if existing else {}
    urls = urls_for(runtime, project, kind)
    public, secrets = split_put(cls, body)
    carried, dropped = cls.carried_over(dict(existing.public), public) if existing else ({}, frozenset())
    public = {**carried, **public}
    secrets = {**cls.generated_secrets(), **{k: v for k, v in kept.items() if k not in dropped}, **secrets}
    await end_transaction(session)
    try:
        channel = channel_from(runtime, kind, {**public, **urls}, secrets)
    except ValueError as exc:  # a secret the form left empty that the channel needs
        raise Invalid(f"incomplete {cls.display_name} settings: {exc}", code="invalid_settings") from exc
    problem = channel.settings_problem()
    if problem is not None:
        await channel.aclose()
        raise Conflict(str(problem), code=problem.code)
    try:
        info = await channel.setup(webhook_url=urls.get("webhook_url") or urls.get("events_url", ""))
    except SetupError as exc:
        if exc.code in cls.field_errors:
            code, field, message = cls.field_errors[exc.code]
            raise Invalid(message, code=code, field=field) from exc
        raise DomainError(str(exc), code=exc.code) from exc
    finally:
        await channel.aclose()
    secrets = {**secrets, **info.secrets}  # e.g. a rotated token with its new refresh token
    stored = {**public, **urls, **info.details, "mode": info.mode, "webhook_url": info.webhook_url,
              "steps": info.steps}
    if info.bot_username:
        stored["bot_username"] = info.bot_username
    integration = await save_integration(session, actor=actor, box=runtime.secrets, kind=kind, secrets=secrets,
                                         public=stored, status="connected")
    if info.installation and info.installation.get("external_id"):  # e.g. a pasted Slack bot token's workspace
        await save_installation(session, box=runtime.secrets, integration=integration,
                                external_id=str(info.installation["external_id"]),
                                name=str(info.installation.get("name") or ""),
                                public=dict(info.installation.get("public") or {}),
                                secrets=dict(info.installation.get("secrets") or {}))
    get_hub(runtime).forget_tenants()
    rows = await list_installations(session, integration_id=integration.id)
    return status_of(kind, integration, runtime, project, rows)


async def update(session: AsyncSession, *, actor: Actor, runtime: Runtime, kind: str,
                 body: BaseModel) -> IntegrationStatus:
    """``PATCH /v1/tenant/{kind}``: change public settings on their own (the channel's ``Patch``), checked by
    the channel as a PUT would be; nothing is asked of the provider and the secrets stay as they are."""
    actor.require_admin()
    channel_class(kind)  # an unknown kind is refused before anything is read
    integration = await get_integration(session, actor=actor, kind=kind)
    public = {**integration.public, **body.model_dump(exclude_none=True)}
    channel = channel_from(runtime, kind, public, open_secrets(runtime.secrets, integration))
    problem = channel.settings_problem()
    await channel.aclose()
    if problem is not None:
        raise Conflict(str(problem), code=problem.code)
    integration.public = public
    integration.updated_at = utcnow()  # the hub builds the channel again
    await record_event(session, project_id=actor.project_id, type="integration.updated",
                       data={"kind": kind, "changed": body.model_dump(exclude_none=True)})
    get_hub(runtime).forget_tenants()
    project = await session.get(Project, actor.project_id)
    assert project is not None
    rows = await list_installations(session, integration_id=integration.id)
    return status_of(kind, integration, runtime, project, rows)


async def disconnect(session: AsyncSession, *, actor: Actor, runtime: Runtime, kind: str) -> None:
    """Undo the provider registration (no transaction open meanwhile), then delete the integration and
    its installations."""
    integration = await get_integration(session, actor=actor, kind=kind)
    channel = await get_hub(runtime).for_integration(integration, session)
    await end_transaction(session)
    await channel.teardown()
    integration = await get_integration(session, actor=actor, kind=kind)  # still there, in the new transaction
    for row in await list_installations(session, integration_id=integration.id):
        await session.delete(row)
    apps = list((await session.execute(select(ProviderApp).where(ProviderApp.integration_id == integration.id)))
                .scalars())
    for app in apps:  # their credentials go with the integration; the apps stay at the provider, named below
        await session.delete(app)
    await session.delete(integration)
    await record_event(session, project_id=actor.project_id, type="integration.deleted", data={
        "kind": kind, "apps_left_at_provider": [a.external_id for a in apps if a.status == "live"]})
    get_hub(runtime).forget_tenants()
