"""Apps minted at a provider for one smith: dedicated Slack apps (SL-3), their rename (REN-1) and deletion.

The provider is never called with a transaction open (app/services/tenant_setup.end_transaction), so a
mint is three steps: a short transaction reserves a place under the project's cap (a ``minting`` row,
checked with the integration's row locked); the provider mints the app; one transaction stores the app's
sealed credentials, makes it ``live`` and creates its pending deployment with its install link, and is
committed here. When the provider refuses, the reservation is dropped; when storing fails, the app is
deleted at the provider again: no app without its stored credentials, no credentials without an app.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.actors import Actor
from app.services.app_credentials import seal_app_secrets
from app.services.channel_hub import get_hub
from app.services.credential_renewal import record_refusal
from app.services.deployment_links import issue_link, record_created
from app.services.errors import Conflict, DomainError, Invalid, NotFound, RateLimited
from app.services.events import record_event
from app.services.installations import revoke_app_installations
from app.services.integrations import find_integration
from app.services.runtime import Runtime, get_runtime
from app.services.tenant_setup import end_transaction
from channels import REGISTRY
from channels.apps import AppFactory, AppRefused, AppSpec, MintedApp
from channels.base import Channel
from channels.errors import SetupError
from models import Deployment, Integration, Project, ProviderApp, Smith
from models.types import new_id, utcnow

log = logging.getLogger("ingram.apps")

STALE_MINTING = timedelta(minutes=10)  # a reservation older than this was left by a crash: not counted


def factory_class(kind: str) -> type[AppFactory]:
    cls = REGISTRY.get(kind)
    if cls is None or not issubclass(cls, AppFactory):
        raise Invalid(f"{kind} deployments cannot be provisioned", code="invalid_setup", field="setup.mode")
    return cls


def checked_name(cls: type[AppFactory], value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= cls.max_display_name:
        raise Invalid(f"display_name must be 1 to {cls.max_display_name} characters (the provider's limit)",
                      code="invalid_display_name", field="display_name")
    return name


def checked_request(cls: type[AppFactory], setup: dict[str, Any], metadata: dict[str, Any],
                    smith: Smith) -> tuple[str, dict[str, Any]]:
    try:
        return cls.app_request(setup, metadata, smith_name=smith.name)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        code = "invalid_provider_metadata" if field.startswith("provider_metadata") else "invalid_setup"
        raise Invalid(str(exc), code=code, field=field) from exc


async def _context(session: AsyncSession, project_id: str, kind: str) -> tuple[Integration, Channel, str]:
    integration = await find_integration(session, project_id=project_id, kind=kind)
    project = await session.get(Project, project_id)
    if integration is None or project is None:
        raise Conflict(f"connect {kind} first", code="integration_not_configured")
    channel = await get_hub(get_runtime()).for_integration(integration, session)
    return integration, channel, project.slug


async def _refused(runtime: Runtime, integration_id: str, exc: SetupError) -> DomainError:
    """The provider's refusal as the API's error; a refused configuration token also shows on the card."""
    if isinstance(exc, AppRefused) and exc.credentials:
        await record_refusal(runtime, integration_id, f"{exc.code}: {exc}")
        return Conflict(str(exc), code=exc.code or "factory_credentials_refused")
    if isinstance(exc, AppRefused):
        if exc.field:
            return Invalid(str(exc), code=exc.code or "invalid_app", field=exc.field, details=exc.details)
        return DomainError(str(exc), code=exc.code or "invalid_app", details=exc.details)
    if exc.code == "provider_rate_limited":
        return RateLimited(str(exc), code=exc.code)
    if exc.code in ("public_url_required", "app_gone"):
        return Conflict(str(exc), code=exc.code)
    return DomainError(str(exc), code=exc.code or "provider_error")


async def _live_count(session: AsyncSession, project_id: str, kind: str) -> int:
    fresh = utcnow() - STALE_MINTING
    return int((await session.execute(select(func.count()).select_from(ProviderApp).where(
        ProviderApp.project_id == project_id, ProviderApp.kind == kind,
        or_(ProviderApp.status == "live",
            (ProviderApp.status == "minting") & (ProviderApp.created_at > fresh))))).scalar_one())


async def provision(session: AsyncSession, *, actor: Actor, smith: Smith, kind: str, setup: dict[str, Any],
                    metadata: dict[str, Any]) -> tuple[Deployment, str | None]:
    """SL-3: mint an app for ``smith`` and answer its pending deployment and install link; with
    ``setup.app_id``, a new install of an app minted before (into another workspace)."""
    cls = factory_class(kind)
    if setup.get("app_id") is not None:
        return await _install_again(session, actor=actor, smith=smith, kind=kind, app_id=setup["app_id"],
                                    metadata=metadata, return_url=setup.get("return_url"))
    runtime = get_runtime()
    name, settings = checked_request(cls, setup, metadata, smith)
    integration, channel, tenant = await _context(session, actor.project_id, kind)
    assert isinstance(channel, AppFactory)
    problem = channel.factory_ready()
    if problem:
        raise Conflict(problem, code=f"{kind}_factory_not_configured")
    await session.execute(select(Integration.id).where(Integration.id == integration.id).with_for_update())
    cap = int(getattr(runtime.settings, cls.app_cap_setting))
    if await _live_count(session, actor.project_id, kind) >= cap:
        raise RateLimited(f"this project has {cap} {cls.app_noun}s already, the most it may have "
                          f"({cls.app_cap_setting.upper()}); delete one first", code=cls.app_cap_code,
                          details={"cap": cap})
    reserved = ProviderApp(id=new_id("app"), project_id=actor.project_id, integration_id=integration.id, kind=kind,
                           smith_id=smith.id, name=name, status="minting")
    session.add(reserved)
    await end_transaction(session)  # the reservation holds the place while the provider is asked
    spec = AppSpec(key=reserved.id, display_name=name, owner_name=smith.name, settings=settings)
    try:
        minted = await channel.mint_app(spec, public_url=runtime.settings.public_url, tenant=tenant)
    except SetupError as exc:
        await _drop(runtime, reserved.id)
        raise await _refused(runtime, integration.id, exc) from exc
    try:
        deployment, link = await _store_minted(session, actor=actor, reserved=reserved, minted=minted,
                                               spec=spec, metadata=metadata, return_url=setup.get("return_url"))
        await end_transaction(session)  # committed here, so a failure is known while the app can be undone
    except BaseException:
        await session.rollback()
        await _undo(runtime, channel, reserved.id, minted.external_id)
        raise
    get_hub(runtime).forget_tenants()
    return deployment, link


async def _store_minted(session: AsyncSession, *, actor: Actor, reserved: ProviderApp, minted: MintedApp,
                        spec: AppSpec, metadata: dict[str, Any], return_url: str | None
                        ) -> tuple[Deployment, str | None]:
    row = await session.get(ProviderApp, reserved.id)
    if row is None:
        raise Conflict("the app's reservation disappeared meanwhile", code="app_reservation_lost")
    now = utcnow()
    row.external_id, row.status, row.updated_at = minted.external_id, "live", now
    row.public = {**minted.public, "owner_name": spec.owner_name, "settings": dict(spec.settings)}
    seal_app_secrets(get_runtime().secrets, row, minted.secrets)
    # Every process's hub attaches the new app (it rebuilds a channel whose integration changed).
    await session.execute(update(Integration).where(Integration.id == row.integration_id).values(updated_at=now))
    deployment, link = await _pending_deployment(session, row=row, metadata=metadata, return_url=return_url,
                                                 minted=minted)
    await record_event(session, project_id=actor.project_id, type=f"{row.kind}.app_created", smith_id=row.smith_id,
                       deployment_id=deployment.id,
                       data={"app_id": minted.external_id, "name": row.name, "smith_id": row.smith_id})
    return deployment, link


async def _pending_deployment(session: AsyncSession, *, row: ProviderApp, metadata: dict[str, Any],
                              return_url: str | None, minted: MintedApp | None = None) -> tuple[Deployment, str | None]:
    """The app's deployment: active at once where the app has an address (an email inbox), else pending
    until its install link is followed."""
    setup: dict[str, Any] = {"mode": "provision", "app_id": row.external_id}
    if return_url:
        setup["return_url"] = return_url
    deployment = Deployment(id=new_id("dep"), project_id=row.project_id, kind=row.kind, target_type="smith",
                            target_id=row.smith_id, provider_metadata=metadata, display_name=row.name, setup=setup)
    link = None
    if minted is not None and minted.address:
        deployment.status, deployment.address, deployment.bound_at = "active", minted.address, utcnow()
        deployment.owner_identity, deployment.owner_email = minted.owner_identity, minted.owner_email
    else:
        link = await issue_link(session, deployment)
    session.add(deployment)
    await session.flush()
    await record_created(session, deployment)
    return deployment, link


async def _install_again(session: AsyncSession, *, actor: Actor, smith: Smith, kind: str, app_id: Any,
                         metadata: dict[str, Any], return_url: str | None) -> tuple[Deployment, str | None]:
    row = await live_app(session, project_id=actor.project_id, kind=kind, app_id=str(app_id))
    if row is None:
        raise NotFound(f"no live app {app_id!s:.64} in this project", code="app_not_found")
    if row.smith_id != smith.id:
        raise Conflict(f"app {row.external_id} belongs to another smith ({row.smith_id})", code="app_of_other_smith")
    return await _pending_deployment(session, row=row, metadata=metadata, return_url=return_url)


async def live_app(session: AsyncSession, *, project_id: str, kind: str, app_id: str) -> ProviderApp | None:
    return (await session.execute(select(ProviderApp).where(
        ProviderApp.project_id == project_id, ProviderApp.kind == kind, ProviderApp.external_id == app_id,
        ProviderApp.status == "live"))).scalar_one_or_none()


async def _drop(runtime: Runtime, reservation_id: str) -> None:
    async with runtime.transaction() as session:
        row = await session.get(ProviderApp, reservation_id)
        if row is not None and row.status == "minting":
            await session.delete(row)


async def _undo(runtime: Runtime, channel: Channel, reservation_id: str, external_id: str) -> None:
    assert isinstance(channel, AppFactory)
    try:
        await channel.delete_app(external_id)
    except SetupError as exc:  # left at the provider: the log names it for a person to delete
        log.error("app %s was minted but could not be stored, nor deleted again (%s): delete it by hand", external_id,
                  exc)
    await _drop(runtime, reservation_id)


def provisioned(deployment: Deployment) -> bool:
    return deployment.setup.get("mode") == "provision" and bool(deployment.setup.get("app_id"))


async def rename(session: AsyncSession, *, deployment: Deployment, display_name: str) -> None:
    """REN-1: the app's manifest again, whole, with the new name (its bot's display name too); every
    deployment of the app takes the name."""
    cls = factory_class(deployment.kind)
    name = checked_name(cls, display_name)
    row = await live_app(session, project_id=deployment.project_id, kind=deployment.kind,
                         app_id=str(deployment.setup["app_id"]))
    if row is None:
        raise Conflict(f"the app of deployment {deployment.id} was deleted", code="app_deleted")
    integration, channel, tenant = await _context(session, deployment.project_id, deployment.kind)
    assert isinstance(channel, AppFactory) and row.external_id
    spec = AppSpec(key=row.id, display_name=name, owner_name=str(row.public.get("owner_name") or ""),
                   settings=dict(row.public.get("settings") or {}))
    runtime = get_runtime()
    await end_transaction(session)
    try:
        await channel.update_app(row.external_id, spec, public_url=runtime.settings.public_url, tenant=tenant)
    except SetupError as exc:
        raise await _refused(runtime, integration.id, exc) from exc
    row.name, row.updated_at = name, utcnow()
    for other in await deployments_of(session, row):
        other.display_name, other.updated_at = name, utcnow()
    # Every process's hub rebuilds the channel: a name the channel uses itself (an email's From) is current.
    await session.execute(update(Integration).where(Integration.id == row.integration_id).values(updated_at=utcnow()))
    await record_event(session, project_id=row.project_id, type=f"{row.kind}.app_renamed", smith_id=row.smith_id,
                       data={"app_id": row.external_id, "name": name})


async def deployments_of(session: AsyncSession, row: ProviderApp) -> list[Deployment]:
    """The app's live deployments (at most a few: one per workspace it is installed in)."""
    found = (await session.execute(select(Deployment).where(
        Deployment.project_id == row.project_id, Deployment.kind == row.kind, Deployment.target_id == row.smith_id,
        Deployment.status != "revoked"))).scalars()
    return [d for d in found if d.setup.get("app_id") == row.external_id]


async def delete_with_last(session: AsyncSession, *, deployment: Deployment) -> bool:
    """Deleting the last live deployment of an app deletes the app at the provider first (a refusal
    changes nothing), then its row and its workspaces' tokens. Returns whether the app went."""
    row = await live_app(session, project_id=deployment.project_id, kind=deployment.kind,
                         app_id=str(deployment.setup.get("app_id")))
    if row is None or any(d.id != deployment.id for d in await deployments_of(session, row)):
        return False
    integration, channel, _ = await _context(session, deployment.project_id, deployment.kind)
    assert isinstance(channel, AppFactory) and row.external_id
    runtime = get_runtime()
    await end_transaction(session)
    try:
        await channel.delete_app(row.external_id)
    except SetupError as exc:
        raise await _refused(runtime, integration.id, exc) from exc
    now = utcnow()
    row.status, row.deleted_at, row.updated_at, row.secrets_ciphertext = "deleted", now, now, ""
    await revoke_app_installations(session, integration_id=row.integration_id, app_id=row.external_id)
    await record_event(session, project_id=row.project_id, type=f"{row.kind}.app_deleted", smith_id=row.smith_id,
                       deployment_id=deployment.id, data={"app_id": row.external_id, "name": row.name})
    get_hub(runtime).forget_tenants()
    return True


async def note_owner(session: AsyncSession, *, deployment: Deployment, owner_email: str | None) -> None:
    """ID-5: the inbox's owner changed; the channel writes to them when a run has no correspondent."""
    row = await live_app(session, project_id=deployment.project_id, kind=deployment.kind,
                         app_id=str(deployment.setup.get("app_id")))
    if row is None:
        return
    settings = {k: v for k, v in dict(row.public.get("settings") or {}).items() if k != "owner_email"}
    row.public = {**row.public, "settings": {**settings, **({"owner_email": owner_email} if owner_email else {})}}
    row.updated_at = utcnow()
    await session.execute(update(Integration).where(Integration.id == row.integration_id).values(updated_at=utcnow()))
