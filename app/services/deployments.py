"""Deployments (DEP-1..DEP-6): bind a messaging surface to a smith, or an agent catch-all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services import provider_apps
from app.services.actors import Actor
from app.services.agents import get_agent
from app.services.bindings import check_literal_address, revoke
from app.services.channel_hub import get_hub
from app.services.deployment_links import LINK_MODES, display_name, issue_link, record_created
from app.services.deployment_links import START_TOKEN_TTL as START_TOKEN_TTL  # the console shows it
from app.services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from app.services.events import record_event
from app.services.integrations import find_integration
from app.services.pagination import Page, paginate
from app.services.quotas import ProviderMetadata
from app.services.routing import find_catch_all
from app.services.runtime import get_runtime
from app.services.smiths import get_smith
from app.services.tenant_setup import end_transaction
from app.services.tokens import revoke_deployment_tokens
from channels import REGISTRY
from channels.errors import SetupError
from jobs.reply_window import last_inbound_of
from models import Deployment
from models.types import new_id, utcnow

KINDS = ("telegram", "whatsapp", "slack", "email", "linkedin", "mcp")
# Served by this server itself: no provider credentials, active as soon as created (MCP-1).
NO_INTEGRATION_KINDS = frozenset({"mcp"})


def available_kinds() -> frozenset[str]:
    """The kinds this server can deploy: every registered channel, and MCP."""
    return frozenset(REGISTRY) | NO_INTEGRATION_KINDS


def setup_keys(kind: str) -> frozenset[str]:
    """The keys of ``setup`` the kind understands (any other is refused)."""
    channel_class = REGISTRY.get(kind)
    return channel_class.setup_keys if channel_class else frozenset()


def setup_modes(kind: str) -> frozenset[str]:
    channel_class = REGISTRY.get(kind)
    return channel_class.setup_modes if channel_class else frozenset()


def _owner_named(kind: str, setup: dict[str, Any]) -> str | None:
    """The owner a deployment's setup names, where the conversation cannot prove one (LinkedIn)."""
    channel_class = REGISTRY.get(kind)
    try:
        return channel_class.owner_from_setup(setup) if channel_class else None
    except ValueError as exc:
        field = str(exc).split(":", 1)[0] if ":" in str(exc) else "setup"
        raise Invalid(str(exc), code="invalid_setup", field=field) from exc


def _return_url(value: Any) -> str:
    """Where an OAuth install sends the person back (``?slack=connected|cancelled|error`` appended)."""
    if not isinstance(value, str) or len(value) > 2000 or not value.startswith(("https://", "http://")):
        raise Invalid("setup.return_url must be an http(s) URL", code="invalid_setup", field="setup.return_url")
    return value
RENAMABLE_KINDS = frozenset({"slack", "email"})


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["smith", "agent"]
    id: str = Field(min_length=1, max_length=40)


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Target
    kind: Literal["telegram", "whatsapp", "slack", "email", "linkedin", "mcp"]
    setup: dict[str, Any] | None = None
    address: str | None = Field(default=None, min_length=1, max_length=300)
    provider_metadata: ProviderMetadata = Field(default_factory=dict)  # size cap: app/services/quotas.py


class DeploymentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    owner_email: str | None = Field(default=None, max_length=320, pattern=r"^$|^[^@\s<>]{1,64}@[A-Za-z0-9.-]{1,253}"
                                    r"\.[A-Za-z]{2,63}$", description="ID-5: an address, or \"\" to clear it")
    provider_metadata: ProviderMetadata | None = None


class DeploymentView(BaseModel):
    id: str
    kind: str
    target: Target
    status: str
    address: str | None
    display_name: str | None
    owner_identity: str | None
    provider_metadata: dict[str, Any]
    created_at: str
    bound_at: str | None
    revoked_at: str | None = None
    revoked_reason: str | None = Field(default=None, description="deleted | replaced | agent_deleted | "
                                       "smith_deleted | uninstalled")
    owner_email: str | None = None
    deep_link: str | None = Field(default=None, description="Only in the answer that created the link.")
    install_url: str | None = Field(default=None, description="oauth_install: the one-time link that installs "
                                    "the app (the same link as deep_link); only in the answer that created it.")
    deep_link_expires_at: str | None = None
    endpoint_url: str | None = Field(default=None, description="MCP deployments: the Streamable HTTP endpoint.")
    slack_app_id: str | None = Field(default=None, description="A dedicated Slack app's id (setup.mode provision).")
    reply_window_ends_at: str | None = Field(
        default=None, description="Channels that may write only within a window after the person's last "
        "message (WhatsApp: 24 hours): when it closes (in the past once closed); null when the person never "
        "wrote or the channel has no such window.")

    @classmethod
    def of(cls, deployment: Deployment, *, link: str | None = None,
           reply_window_ends_at: datetime | None = None) -> DeploymentView:
        return cls(
            id=deployment.id, kind=deployment.kind,
            target=Target(type=deployment.target_type, id=deployment.target_id),  # type: ignore[arg-type]
            status=deployment.status, address=deployment.address, display_name=deployment.display_name,
            owner_identity=deployment.owner_identity, provider_metadata=deployment.provider_metadata,
            created_at=deployment.created_at.isoformat(),
            bound_at=deployment.bound_at.isoformat() if deployment.bound_at else None,
            revoked_at=deployment.revoked_at.isoformat() if deployment.revoked_at else None,
            revoked_reason=deployment.revoked_reason, owner_email=deployment.owner_email,
            deep_link=link,
            install_url=link if link and deployment.setup.get("mode") in ("oauth_install", "provision") else None,
            slack_app_id=deployment.setup.get("app_id") if deployment.kind == "slack" else None,
            deep_link_expires_at=deployment.start_token_expires_at.isoformat()
            if link and deployment.start_token_expires_at else None,
            endpoint_url=endpoint_url(deployment),
            reply_window_ends_at=reply_window_ends_at.isoformat() if reply_window_ends_at else None,
        )


async def views(session: AsyncSession, items: Sequence[Deployment], *, link: str | None = None) -> list[DeploymentView]:
    """Deployments as the API and the console show them, with each conversation's reply window where the
    channel has one (WA-4): one query per kind, whatever the number of deployments."""
    wanted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for deployment in items:
        channel = REGISTRY.get(deployment.kind)
        if channel is not None and channel.reply_window is not None and deployment.address:
            wanted[(deployment.project_id, deployment.kind)].append(deployment.address)
    ends: dict[tuple[str, str], datetime] = {}
    for (project_id, kind), addresses in wanted.items():
        window = REGISTRY[kind].reply_window
        assert window is not None
        for address, at in (await last_inbound_of(session, project_id=project_id, kind=kind,
                                                  addresses=addresses)).items():
            ends[(kind, address)] = at + window
    return [DeploymentView.of(d, link=link, reply_window_ends_at=ends.get((d.kind, d.address or "")))
            for d in items]


async def view(session: AsyncSession, deployment: Deployment, *, link: str | None = None) -> DeploymentView:
    return (await views(session, [deployment], link=link))[0]


def endpoint_url(deployment: Deployment) -> str | None:
    """Where MCP clients connect (MCP-1); None for other kinds."""
    if deployment.kind not in NO_INTEGRATION_KINDS:
        return None
    return f"{get_runtime().settings.public_url}/v1/deployments/{deployment.id}/mcp"


async def create_deployment(session: AsyncSession, *, actor: Actor,
                            body: DeploymentCreate) -> tuple[Deployment, str | None]:
    """Returns the deployment and, for start-token setups, the one-time deep link."""
    smith = None
    if body.target.type == "smith":
        actor.require_smith(body.target.id)
        smith = await get_smith(session, actor=actor, smith_id=body.target.id)
    else:
        if not actor.is_admin:
            raise Forbidden("a smith token may only target its own smith", code="wrong_smith")
        await get_agent(session, actor=actor, agent_id=body.target.id)
    if body.kind not in available_kinds():
        raise Invalid(f"{body.kind} deployments are not available yet on this server", code="kind_not_available",
                      field="kind")
    needs_integration = body.kind not in NO_INTEGRATION_KINDS
    if needs_integration and await find_integration(session, project_id=actor.project_id, kind=body.kind) is None:
        raise Conflict(f"connect {display_name(body.kind)} first (Settings → Integrations, or "
                       f"PUT /v1/tenant/{body.kind})",
                       code="integration_not_configured")
    if needs_integration and REGISTRY[body.kind].can_block:  # LI-3: while LinkedIn's gate is closed
        blocked = (await get_hub(get_runtime()).for_project(session, actor.project_id, body.kind)).blocked()
        if blocked is not None:
            raise Conflict(str(blocked), code=blocked.code)
    if body.target.type == "agent":
        existing = await find_catch_all(session, project_id=actor.project_id, kind=body.kind)
        if existing is not None:
            raise Conflict(f"this project already has a {body.kind} catch-all: {existing.id}",
                           code="catch_all_exists", details={"existing_id": existing.id})
    setup = body.setup or {}
    unknown = sorted(set(setup) - setup_keys(body.kind))
    if unknown:
        raise Invalid(f"unknown setup key {unknown[0]!r} for {body.kind} deployments", code="invalid_setup",
                      field=f"setup.{unknown[0]}")
    mode = setup.get("mode")
    if mode is not None and not needs_integration:
        raise Invalid(f"{body.kind} deployments take no setup.mode", code="invalid_setup", field="setup.mode")
    modes = setup_modes(body.kind)
    if mode is not None and mode not in modes:
        raise Invalid(f"unknown setup.mode {mode!r} for {body.kind}; use {' or '.join(sorted(modes))}",
                      code="invalid_setup", field="setup.mode")
    if (setup.get("display_name") is not None or setup.get("app_id") is not None) and mode != "provision":
        field = "setup.display_name" if setup.get("display_name") is not None else "setup.app_id"
        raise Invalid(f"{field} applies to setup.mode provision only", code="invalid_setup", field=field)
    if mode == "provision":  # SL-3: a dedicated app minted for this smith
        if smith is None or body.address:
            raise Invalid("a provisioned app serves one smith: target a smith, and give no address",
                          code="invalid_setup", field="setup.mode")
        if setup.get("return_url"):
            setup = {**setup, "return_url": _return_url(setup["return_url"])}
        return await provider_apps.provision(session, actor=actor, smith=smith, kind=body.kind, setup=setup,
                                             metadata=body.provider_metadata)
    owner = None
    if body.address and body.target.type == "smith" and needs_integration:
        owner = await check_literal_address(session, actor=actor, project_id=actor.project_id, kind=body.kind,
                                            address=body.address)
    named = _owner_named(body.kind, setup)
    if named is not None:
        if not (body.address and body.target.type == "smith"):
            raise Invalid("an owner is named for a smith's conversation: give its address too", code="invalid_setup",
                          field="setup.owner_member")
        owner = named
    deployment = Deployment(
        id=new_id("dep"), project_id=actor.project_id, kind=body.kind, target_type=body.target.type,
        target_id=body.target.id, provider_metadata=body.provider_metadata, setup={"mode": mode} if mode else {},
    )
    link = None
    if body.target.type == "agent":
        deployment.status = "active"  # TG-3: anyone who messages the bot gets their own smith
        if needs_integration:
            await _catch_all_at_provider(session, actor.project_id, body.kind, active=True)
    elif not needs_integration:  # MCP-1: the endpoint answers as soon as it exists
        deployment.status, deployment.bound_at = "active", utcnow()
    elif body.address:
        deployment.status, deployment.address, deployment.bound_at = "active", body.address, utcnow()
        deployment.owner_identity = owner  # a private chat's user may decide approvals by tap
    elif mode in LINK_MODES or (mode is None and modes & LINK_MODES):
        # A one-time link the person opens: a deep link (start_token) or an install link (oauth_install).
        deployment.setup = {"mode": mode or sorted(modes & LINK_MODES)[0]}
        if setup.get("return_url"):
            deployment.setup["return_url"] = _return_url(setup["return_url"])
        link = await issue_link(session, deployment)
    else:
        raise Invalid(f"{body.kind} smith deployments need an address or a setup.mode", code="invalid_setup",
                      field="setup.mode")
    session.add(deployment)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent create won the unique index
        if body.target.type == "agent":
            raise Conflict(f"this project already has a {body.kind} catch-all", code="catch_all_exists") from exc
        if body.address:
            raise Conflict(f"{body.address} is already bound", code="address_bound") from exc
        raise Conflict("that deployment already exists", code="deployment_exists") from exc
    await record_created(session, deployment)
    return deployment, link


async def get_deployment(session: AsyncSession, *, actor: Actor, deployment_id: str) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None or deployment.project_id != actor.project_id:  # revoked ones stay visible
        raise NotFound(f"no deployment {deployment_id}", code="deployment_not_found")
    if not actor.is_admin and not (deployment.target_type == "smith" and deployment.target_id == actor.smith_id):
        raise Forbidden("a smith token may only see its own smith's deployments", code="wrong_smith")
    return deployment


async def list_deployments(
    session: AsyncSession, *, actor: Actor, kind: str | None = None, status: str | None = None,
    target_id: str | None = None, include_revoked: bool = True, limit: int | None = None,
    cursor: str | None = None,
) -> Page[Deployment]:
    stmt = select(Deployment).where(Deployment.project_id == actor.project_id)
    if not include_revoked:
        stmt = stmt.where(Deployment.status != "revoked")
    if not actor.is_admin:
        stmt = stmt.where(Deployment.target_type == "smith", Deployment.target_id == actor.smith_id)
    if kind:
        stmt = stmt.where(Deployment.kind == kind)
    if status:
        stmt = stmt.where(Deployment.status == status)
    if target_id:
        stmt = stmt.where(Deployment.target_id == target_id)
    return await paginate(session, stmt, Deployment.id, limit=limit, cursor=cursor)


async def update_deployment(session: AsyncSession, *, actor: Actor, deployment_id: str,
                            body: DeploymentUpdate) -> Deployment:
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    renames_app = provider_apps.provisioned(deployment)
    if body.display_name is not None and (deployment.kind not in RENAMABLE_KINDS
                                          or (deployment.kind == "slack" and not renames_app)):
        why = ("only a dedicated Slack app can be renamed (the shared app's name is the same in every workspace)"
               if deployment.kind == "slack" else f"{deployment.kind} deployments cannot be renamed")
        raise Invalid(why, code="rename_unsupported", field="display_name")
    if body.owner_email is not None and deployment.kind != "email":
        raise Invalid("owner_email applies to email deployments only", field="owner_email")
    if deployment.status == "revoked":
        raise Conflict(f"deployment {deployment.id} is revoked", code="deployment_revoked")
    if body.display_name is not None and renames_app:  # REN-1: the app itself is renamed at the provider
        await provider_apps.rename(session, deployment=deployment, display_name=body.display_name)
    elif body.display_name is not None:
        deployment.display_name = body.display_name
    if body.owner_email is not None:
        owner = body.owner_email.strip().lower() or None
        deployment.owner_email = owner  # ID-5; "" clears it
        deployment.owner_identity = f"email:{owner}" if owner else None  # with DMARC's pass, that sender owns
        if provider_apps.provisioned(deployment):
            await provider_apps.note_owner(session, deployment=deployment, owner_email=owner)
    if body.provider_metadata is not None:
        deployment.provider_metadata = body.provider_metadata
    deployment.updated_at = utcnow()
    await record_event(session, project_id=actor.project_id, type="deployment.updated",
                       deployment_id=deployment.id, data={"deployment_id": deployment.id})
    return deployment


async def new_deep_link(session: AsyncSession, *, actor: Actor, deployment_id: str) -> tuple[Deployment, str]:
    """A fresh start link for a smith deployment (the previous one stops working)."""
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    if deployment.target_type != "smith" or not setup_modes(deployment.kind) & LINK_MODES:
        raise Invalid(f"{deployment.kind} deployments have no start links", code="no_start_link")
    if deployment.status == "revoked":
        raise Conflict(f"deployment {deployment.id} is revoked; create a new one", code="deployment_revoked")
    link = await issue_link(session, deployment)
    deployment.updated_at = utcnow()
    return deployment, link


async def delete_deployment(session: AsyncSession, *, actor: Actor, deployment_id: str,
                            keep_app: bool = False) -> Deployment:
    """Unbind: the deployment stops answering and the smith loses its send tool (DEP-2, DEP-6). The last
    deployment of a dedicated app takes the app with it, unless ``keep_app``."""
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    if provider_apps.provisioned(deployment) and not keep_app:
        await provider_apps.delete_with_last(session, deployment=deployment)
    if deployment.status == "revoked":
        return deployment  # already unbound: deleting again changes nothing
    if deployment.target_type == "agent" and deployment.kind not in NO_INTEGRATION_KINDS:
        await _catch_all_at_provider(session, actor.project_id, deployment.kind, active=False)
    revoke(deployment, reason="deleted")
    await revoke_deployment_tokens(session, deployment_id=deployment.id)  # its MCP caller tokens (issue 13)
    await record_event(session, project_id=actor.project_id, type="deployment.deleted",
                       deployment_id=deployment.id, data={"deployment_id": deployment.id, "kind": deployment.kind})
    return deployment


async def _catch_all_at_provider(session: AsyncSession, project_id: str, kind: str, *, active: bool) -> None:
    """EM-4: a catch-all may need the provider to route everything else here (email's catch-all rule). The
    provider is asked with no transaction open; a refusal changes nothing here."""
    channel_class = REGISTRY.get(kind)
    if channel_class is None or not channel_class.catch_all_at_provider:
        return  # nothing to tell the provider (most channels)
    channel = await get_hub(get_runtime()).for_project(session, project_id, kind)
    if channel is None:
        return
    await end_transaction(session)
    try:
        await channel.catch_all_changed(active)
    except SetupError as exc:
        raise DomainError(str(exc), code=exc.code or "provider_error") from exc
