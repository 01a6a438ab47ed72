"""API tokens (API-2): random, shown once, stored as SHA-256.

``admin`` tokens act on the whole project; ``smith`` tokens on one smith; ``mcp`` caller tokens
(minted on one MCP deployment, ``app.services.mcp_tokens``) call that deployment's endpoint and
nothing else: ``authenticate`` refuses them everywhere else, so no route can forget to. Every token
has a subject: who or what holds it (MCP mints a smith per subject on agent targets).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import hash_token
from app.services.actors import Actor
from app.services.errors import NotFound, Unauthorized
from app.services.events import record_event
from app.services.pagination import Page, paginate
from models import ApiToken
from models.types import new_id, utcnow

_LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request


class TokenCreate(BaseModel):
    subject: str = Field(min_length=1, max_length=200, description="Who holds the token.")
    name: str = Field(default="", max_length=200, description="A label for people.")


class SmithTokenCreate(BaseModel):
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    name: str = Field(default="", max_length=200)


class TokenView(BaseModel):
    id: str
    kind: str
    subject: str
    name: str
    smith_id: str | None
    deployment_id: str | None = Field(default=None, description="MCP caller tokens: their deployment.")
    hint: str = Field(description="The token's last 4 characters.")
    created_at: str
    last_used_at: str | None
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> TokenView:
        return cls(
            id=token.id, kind=token.kind, subject=token.subject, name=token.name,
            smith_id=token.smith_id, deployment_id=token.deployment_id, hint=token.hint,
            created_at=token.created_at.isoformat(),
            last_used_at=token.last_used_at.isoformat() if token.last_used_at else None,
            revoked=token.revoked_at is not None,
        )


class MintedToken(TokenView):
    token: str = Field(description="The token value. Shown once; store it now.")


def new_value(kind: str) -> str:
    return f"ic_{kind}_{secrets.token_urlsafe(32)}"


async def _insert(session: AsyncSession, token: ApiToken, value: str) -> MintedToken:
    session.add(token)
    await session.flush()
    await record_event(
        session, project_id=token.project_id, type="token.created", smith_id=token.smith_id,
        data={"token_id": token.id, "kind": token.kind, "subject": token.subject},
    )
    return MintedToken(**TokenView.of(token).model_dump(), token=value)


async def create_admin_token(session: AsyncSession, *, actor: Actor, body: TokenCreate) -> MintedToken:
    actor.require_admin()
    value = new_value("admin")
    token = ApiToken(
        id=new_id("tok"), project_id=actor.project_id, kind="admin", subject=body.subject,
        name=body.name, token_hash=hash_token(value), hint=value[-4:],
    )
    return await _insert(session, token, value)


async def create_smith_token(
    session: AsyncSession, *, actor: Actor, smith_id: str, body: SmithTokenCreate
) -> MintedToken:
    from app.services.smiths import get_smith  # smiths imports tokens for cascade deletes

    actor.require_admin()
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    value = new_value("smith")
    token = ApiToken(
        id=new_id("tok"), project_id=actor.project_id, kind="smith",
        subject=body.subject or f"smith:{smith.id}", name=body.name,
        token_hash=hash_token(value), hint=value[-4:], smith_id=smith.id,
    )
    return await _insert(session, token, value)


async def list_tokens(
    session: AsyncSession, *, actor: Actor, kind: str | None = None, smith_id: str | None = None,
    include_revoked: bool = False, limit: int | None = None, cursor: str | None = None,
) -> Page[ApiToken]:
    actor.require_admin()
    stmt = select(ApiToken).where(ApiToken.project_id == actor.project_id)
    if kind:
        stmt = stmt.where(ApiToken.kind == kind)
    if smith_id:
        stmt = stmt.where(ApiToken.smith_id == smith_id)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    return await paginate(session, stmt, ApiToken.id, limit=limit, cursor=cursor)


async def revoke_token(session: AsyncSession, *, actor: Actor, token_id: str) -> ApiToken:
    actor.require_admin()
    token = await session.get(ApiToken, token_id)
    if token is None or token.project_id != actor.project_id:
        raise NotFound(f"no token {token_id}", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await record_event(
            session, project_id=token.project_id, type="token.revoked", smith_id=token.smith_id,
            data={"token_id": token.id, "kind": token.kind, "subject": token.subject},
        )
    return token


async def revoke_deployment_tokens(session: AsyncSession, *, deployment_id: str) -> int:
    """Revoke the live MCP caller tokens of a deployment being removed; how many were live."""
    live = (await session.execute(select(ApiToken).where(
        ApiToken.deployment_id == deployment_id, ApiToken.revoked_at.is_(None)))).scalars().all()  # type: ignore[union-attr]
    now = utcnow()
    for token in live:
        token.revoked_at = now
        await record_event(
            session, project_id=token.project_id, type="token.revoked", deployment_id=deployment_id,
            data={"token_id": token.id, "kind": token.kind, "subject": token.subject, "deployment_id": deployment_id},
        )
    return len(live)


async def authenticate(session: AsyncSession, value: str, *, mcp_deployment_id: str | None = None) -> Actor:
    """A bearer value to an actor; any unknown, malformed or revoked token is one error (401).

    ``mcp_deployment_id``: set only by the MCP endpoint, to the deployment being called. Everywhere
    else it is None, and an MCP caller token is refused (403 ``mcp_token_scope``) right here, where
    tokens become actors, so every /v1 route (and any added later) refuses it without a check of its own.
    """
    if not value or len(value) > 200:
        raise Unauthorized("missing or invalid bearer token", code="invalid_token")
    digest = hash_token(value)
    token = (
        await session.execute(select(ApiToken).where(ApiToken.token_hash == digest))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or not hmac.compare_digest(
        token.token_hash, digest
    ):
        raise Unauthorized("missing or invalid bearer token", code="invalid_token")
    actor = Actor(
        project_id=token.project_id, kind=token.kind, subject=token.subject,
        smith_id=token.smith_id, token_id=token.id, deployment_id=token.deployment_id,
    )
    actor.require_scope(mcp_deployment_id)
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = now
    return actor


async def ensure_admin_token(session: AsyncSession, *, project_id: str, value: str) -> None:
    """IC_ADMIN_TOKEN: make sure an admin token with exactly this value exists (bootstrap)."""
    digest = hash_token(value)
    existing = (
        await session.execute(select(ApiToken).where(ApiToken.token_hash == digest))
    ).scalar_one_or_none()
    if existing is not None:
        if existing.revoked_at is not None:
            existing.revoked_at = None  # the operator asked for this token to work
        return
    token = ApiToken(
        id=new_id("tok"), project_id=project_id, kind="admin", subject="bootstrap",
        name="IC_ADMIN_TOKEN", token_hash=digest, hint=value[-4:],
    )
    try:
        async with session.begin_nested():
            session.add(token)
    except IntegrityError:
        pass  # another process inserted it first
