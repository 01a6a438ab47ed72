"""Deployments (DEP-1..DEP-6): bind a messaging surface to a smith, or an agent catch-all."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, bindparam, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.agents import get_agent
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.events import record_event
from app.services.integrations import find_integration
from app.services.pagination import Page, paginate
from app.services.quotas import ProviderMetadata
from app.services.runtime import get_runtime
from app.services.smiths import get_smith
from channels.telegram import deep_link
from models import Agent, Deployment, Smith
from models.hot import Hot, flush_pending
from models.types import new_id, utcnow

KINDS = ("telegram", "whatsapp", "slack", "email", "linkedin", "mcp")
AVAILABLE_KINDS = frozenset({"telegram", "mcp"})
# Served by this server itself: no provider credentials, active as soon as created (MCP-1).
NO_INTEGRATION_KINDS = frozenset({"mcp"})
START_TOKEN_TTL = timedelta(days=7)
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
    owner_email: str | None = Field(default=None, max_length=320)
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
    deep_link: str | None = Field(default=None, description="Only in the answer that created the link.")
    deep_link_expires_at: str | None = None
    endpoint_url: str | None = Field(default=None, description="MCP deployments: the Streamable HTTP endpoint.")

    @classmethod
    def of(cls, deployment: Deployment, *, link: str | None = None) -> DeploymentView:
        return cls(
            id=deployment.id, kind=deployment.kind,
            target=Target(type=deployment.target_type, id=deployment.target_id),  # type: ignore[arg-type]
            status=deployment.status, address=deployment.address, display_name=deployment.display_name,
            owner_identity=deployment.owner_identity, provider_metadata=deployment.provider_metadata,
            created_at=deployment.created_at.isoformat(),
            bound_at=deployment.bound_at.isoformat() if deployment.bound_at else None,
            deep_link=link,
            deep_link_expires_at=deployment.start_token_expires_at.isoformat()
            if link and deployment.start_token_expires_at else None,
            endpoint_url=endpoint_url(deployment),
        )


def endpoint_url(deployment: Deployment) -> str | None:
    """Where MCP clients connect (MCP-1); None for other kinds."""
    if deployment.kind not in NO_INTEGRATION_KINDS:
        return None
    return f"{get_runtime().settings.public_url}/v1/deployments/{deployment.id}/mcp"


def hash_start_token(token: str) -> str:
    return hashlib.sha256(f"start:{token}".encode()).hexdigest()


def _new_start_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits, 32 characters of Telegram's deep-link alphabet


async def _issue_link(session: AsyncSession, deployment: Deployment) -> str:
    integration = await find_integration(session, project_id=deployment.project_id, kind=deployment.kind)
    username = (integration.public if integration else {}).get("bot_username")
    if not username:
        raise Conflict("connect a Telegram bot first (Settings → Integrations, or PUT /v1/tenant/telegram)",
                       code="integration_not_configured")
    token = _new_start_token()
    deployment.start_token_hash = hash_start_token(token)
    deployment.start_token_expires_at = utcnow() + START_TOKEN_TTL
    return deep_link(username, token)


async def create_deployment(session: AsyncSession, *, actor: Actor,
                            body: DeploymentCreate) -> tuple[Deployment, str | None]:
    """Returns the deployment and, for start-token setups, the one-time deep link."""
    if body.target.type == "smith":
        actor.require_smith(body.target.id)
        await get_smith(session, actor=actor, smith_id=body.target.id)
    else:
        if not actor.is_admin:
            raise Forbidden("a smith token may only target its own smith", code="wrong_smith")
        await get_agent(session, actor=actor, agent_id=body.target.id)
    if body.kind not in AVAILABLE_KINDS:
        raise Invalid(f"{body.kind} deployments are not available yet on this server", code="kind_not_available",
                      field="kind")
    needs_integration = body.kind not in NO_INTEGRATION_KINDS
    if needs_integration and await find_integration(session, project_id=actor.project_id, kind=body.kind) is None:
        raise Conflict(f"connect {body.kind} first (Settings → Integrations, or PUT /v1/tenant/{body.kind})",
                       code="integration_not_configured")
    if body.target.type == "agent":
        existing = await find_catch_all(session, project_id=actor.project_id, kind=body.kind)
        if existing is not None:
            raise Conflict(f"this project already has a {body.kind} catch-all: {existing.id}",
                           code="catch_all_exists", details={"existing_id": existing.id})
    setup = body.setup or {}
    mode = setup.get("mode")
    if mode is not None and not needs_integration:
        raise Invalid(f"{body.kind} deployments take no setup.mode", code="invalid_setup", field="setup.mode")
    if mode not in (None, "start_token"):
        raise Invalid(f"unknown setup.mode {mode!r} for {body.kind}; use start_token", code="invalid_setup",
                      field="setup.mode")
    deployment = Deployment(
        id=new_id("dep"), project_id=actor.project_id, kind=body.kind, target_type=body.target.type,
        target_id=body.target.id, provider_metadata=body.provider_metadata, setup={"mode": mode} if mode else {},
    )
    link = None
    if body.target.type == "agent":
        deployment.status = "active"  # TG-3: anyone who messages the bot gets their own smith
    elif not needs_integration:  # MCP-1: the endpoint answers as soon as it exists
        deployment.status, deployment.bound_at = "active", utcnow()
    elif body.address:
        deployment.status, deployment.address, deployment.bound_at = "active", body.address, utcnow()
    else:
        deployment.setup = {"mode": "start_token"}
        link = await _issue_link(session, deployment)
    session.add(deployment)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("that deployment already exists", code="deployment_exists") from exc
    await record_event(session, project_id=actor.project_id, type="deployment.created",
                       deployment_id=deployment.id,
                       smith_id=deployment.target_id if deployment.target_type == "smith" else None,
                       data={"deployment_id": deployment.id, "kind": deployment.kind,
                             "target": {"type": deployment.target_type, "id": deployment.target_id},
                             "status": deployment.status})
    return deployment, link


# Built once: every inbound message runs these.
_CATCH_ALL = select(Deployment).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.target_type == "agent", Deployment.deleted_at.is_(None))  # type: ignore[union-attr]
# Hot (models/hot.py): routing reads ids, not ORM rows; only minting builds a Smith.
_BINDING_OR_CATCH_ALL = Hot(select(  # one query for both: the binding wins in resolve()
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
_MINTED = select(Smith).where(Smith.minted_by_deployment_id == bindparam("deployment_id"),
                              Smith.provider_identity == bindparam("identity"))


class Route(NamedTuple):
    """Who answers an inbound message (``resolve``)."""

    smith_id: str
    deployment_id: str
    is_owner: bool  # the sender owns the conversation (ID-2, ID-3)
    owner_identity: str | None  # who may decide the conversation's approvals


async def find_catch_all(session: AsyncSession, *, project_id: str, kind: str) -> Deployment | None:
    return (await session.execute(_CATCH_ALL, {"project_id": project_id, "kind": kind})).scalars().first()


async def get_deployment(session: AsyncSession, *, actor: Actor, deployment_id: str) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None or deployment.project_id != actor.project_id or deployment.deleted_at is not None:
        raise NotFound(f"no deployment {deployment_id}", code="deployment_not_found")
    if not actor.is_admin and not (deployment.target_type == "smith" and deployment.target_id == actor.smith_id):
        raise Forbidden("a smith token may only see its own smith's deployments", code="wrong_smith")
    return deployment


async def list_deployments(
    session: AsyncSession, *, actor: Actor, kind: str | None = None, status: str | None = None,
    target_id: str | None = None, limit: int | None = None, cursor: str | None = None,
) -> Page[Deployment]:
    stmt = select(Deployment).where(Deployment.project_id == actor.project_id,
                                    Deployment.deleted_at.is_(None))  # type: ignore[union-attr]
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
    if body.display_name is not None and deployment.kind not in RENAMABLE_KINDS:
        raise Invalid(f"{deployment.kind} deployments cannot be renamed", code="rename_unsupported",
                      field="display_name")
    if body.owner_email is not None and deployment.kind != "email":
        raise Invalid("owner_email applies to email deployments only", field="owner_email")
    if body.provider_metadata is not None:
        deployment.provider_metadata = body.provider_metadata
    deployment.updated_at = utcnow()
    await record_event(session, project_id=actor.project_id, type="deployment.updated",
                       deployment_id=deployment.id, data={"deployment_id": deployment.id})
    return deployment


async def new_deep_link(session: AsyncSession, *, actor: Actor, deployment_id: str) -> tuple[Deployment, str]:
    """A fresh start link for a smith deployment (the previous one stops working)."""
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    if deployment.target_type != "smith" or deployment.kind != "telegram":
        raise Invalid("only Telegram smith deployments have start links", code="no_start_link")
    link = await _issue_link(session, deployment)
    deployment.updated_at = utcnow()
    return deployment, link


async def delete_deployment(session: AsyncSession, *, actor: Actor, deployment_id: str) -> Deployment:
    """Unbind: the deployment stops answering and the smith loses its send tool (DEP-2, DEP-6)."""
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    deployment.status, deployment.deleted_at, deployment.updated_at = "revoked", utcnow(), utcnow()
    deployment.start_token_hash = None
    await record_event(session, project_id=actor.project_id, type="deployment.deleted",
                       deployment_id=deployment.id, data={"deployment_id": deployment.id, "kind": deployment.kind})
    return deployment


# -- inbound routing (used by app.services.inbound) ---------------------------------------------


async def bind_start_token(session: AsyncSession, *, project_id: str, kind: str, token: str, sender_id: str,
                           address: str) -> Deployment | None:
    """TG-2: a valid, unused, unexpired token binds the sender's chat. None when not valid."""
    deployment = (await session.execute(select(Deployment).where(
        Deployment.project_id == project_id, Deployment.kind == kind,
        Deployment.start_token_hash == hash_start_token(token)))).scalar_one_or_none()
    now = utcnow()
    if (deployment is None or deployment.deleted_at is not None or deployment.start_token_expires_at is None
            or deployment.start_token_expires_at < now):
        return None
    deployment.status, deployment.address, deployment.owner_identity = "active", address, sender_id
    deployment.bound_at, deployment.updated_at = now, now
    deployment.start_token_hash, deployment.start_token_expires_at = None, None  # single use
    await record_event(session, project_id=project_id, type="deployment.bound", deployment_id=deployment.id,
                       smith_id=deployment.target_id,
                       data={"deployment_id": deployment.id, "kind": kind, "smith_id": deployment.target_id,
                             "address": address, "identity": sender_id})
    return deployment


async def resolve(session: AsyncSession, *, project_id: str, kind: str, address: str, sender_id: str,
                  sender_display: str) -> Route | None:
    """Who answers a message: an exact smith binding wins, else the kind's catch-all mints or finds the
    sender's own smith (DEP-3..DEP-5)."""
    await flush_pending(session)
    candidates = await _BINDING_OR_CATCH_ALL.all(session, {"project_id": project_id, "kind": kind,
                                                           "address": address})
    exact = next((d for d in candidates if d[1] == "smith"), None)
    if exact is not None and await _SMITH_ID.first(session, {"smith_id": exact[2]}):
        deployment_id, _, smith_id, _, owner = exact
        return Route(smith_id, deployment_id, sender_id == owner, owner)
    catch_all = next((d for d in candidates if d[1] == "agent"), None)
    if catch_all is None or catch_all[3] != "active":
        return None
    found = await _MINTED_ID.first(session, {"deployment_id": catch_all[0], "identity": sender_id})
    if found is not None:
        smith_id = str(found[0])
    else:
        deployment = await session.get(Deployment, catch_all[0])
        assert deployment is not None
        smith_id = (await _mint(session, deployment, sender_id, sender_display)).id  # looked up just above
    return Route(smith_id, catch_all[0], True, sender_id)  # a minted smith belongs to its sender (ID-3)


async def mint_smith(session: AsyncSession, *, deployment: Deployment, identity: str, display: str) -> Smith:
    """DEP-4: one smith per (deployment, provider identity), even under concurrent first messages."""
    found = (await session.execute(_MINTED, {"deployment_id": deployment.id, "identity": identity})
             ).scalar_one_or_none()
    return found if found is not None else await _mint(session, deployment, identity, display)


async def _mint(session: AsyncSession, deployment: Deployment, identity: str, display: str) -> Smith:
    """Insert the smith (the caller found none); a concurrent first message that won the unique key
    gives its smith instead."""
    params = {"deployment_id": deployment.id, "identity": identity}
    agent = await session.get(Agent, deployment.target_id)
    assert agent is not None
    smith = Smith(id=new_id("smt"), project_id=deployment.project_id, agent_id=agent.id,
                  name=f"{display or identity} ({deployment.kind})"[:200], owner_identity=identity,
                  minted_by_deployment_id=deployment.id, provider_identity=identity)
    try:
        async with session.begin_nested():
            session.add(smith)
    except IntegrityError:
        return (await session.execute(_MINTED, params)).scalar_one()
    await record_event(session, project_id=deployment.project_id, type="smith.minted", smith_id=smith.id,
                       deployment_id=deployment.id,
                       data={"smith_id": smith.id, "deployment_id": deployment.id, "identity": identity})
    return smith


class SendTarget(NamedTuple):
    """An active deployment that reaches a smith, and the address its outbound messages go to."""

    deployment_id: str
    project_id: str
    kind: str
    address: str | None


async def send_targets(session: AsyncSession, smith_id: str) -> list[SendTarget]:
    """Active deployments that reach this smith: its own bindings (sending to the bound chat), or the
    catch-all that minted it (sending to the minted sender's own chat)."""
    await flush_pending(session)
    smith = await _SMITH_REACH.first(session, {"smith_id": smith_id})
    if smith is None:
        return []
    minted_by, identity = smith
    own_chat = identity.split(":", 1)[1] if identity and ":" in identity else None
    rows = await _OF_SMITH.all(session, {"smith_id": smith_id, "minted_by": minted_by or ""})
    return [SendTarget(deployment_id, project_id, kind, address if target_type == "smith" else own_chat)
            for deployment_id, project_id, kind, target_type, address in rows]


async def deployment_kind(session: AsyncSession, deployment_id: str) -> str | None:
    """The kind of a deployment (also when revoked since: a run started before still replies)."""
    await flush_pending(session)
    row = await _KIND.first(session, {"deployment_id": deployment_id})
    return None if row is None else str(row[0])


# Hot (models/hot.py): every run asks, for its send tools and its reply.
_SMITH_REACH = Hot(select(Smith.minted_by_deployment_id, Smith.provider_identity)
                   .where(Smith.id == bindparam("smith_id")))
_OF_SMITH = Hot(select(Deployment.id, Deployment.project_id, Deployment.kind, Deployment.target_type,
                       Deployment.address).where(
    or_(and_(Deployment.target_type == "smith", Deployment.target_id == bindparam("smith_id")),
        Deployment.id == bindparam("minted_by")),
    Deployment.status == "active", Deployment.deleted_at.is_(None)))  # type: ignore[union-attr]
_KIND = Hot(select(Deployment.kind).where(Deployment.id == bindparam("deployment_id")))
