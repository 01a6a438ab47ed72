"""MCP caller tokens (issue 13, MCP-3): ``ic_mcp_…`` tokens minted on one MCP deployment.

A caller token names who calls (its subject: unique among the deployment's live tokens, printable,
at most 64 characters) and reaches that deployment's MCP endpoint only: ``tokens.authenticate``
refuses it anywhere else (403 ``mcp_token_scope``). On an agent target each subject gets its own
minted smith, so callers are isolated without holding admin tokens; on a smith target every caller
talks to that one smith, on a thread of its own, and cannot read the smith through /v1.

Who may mint, list and revoke them: an admin, or, on a smith target, that smith's own token (the
rules of ``get_deployment``). A caller token can never mint another.
"""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import hash_token
from app.services.actors import MCP_CALLER, Actor
from app.services.deployments import get_deployment
from app.services.errors import Conflict, NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from app.services.tokens import MintedToken, TokenView, new_value
from models import ApiToken, Deployment
from models.types import new_id, utcnow

MCP_KIND = "mcp"  # the deployment kind these tokens belong to
MAX_SUBJECT_CHARS = 64


def clean_subject(value: str) -> str:
    """NFKC-folded and trimmed; refused when blank, longer than 64 characters or not printable (no
    control, format, separator-other-than-space or unassigned characters: the subject reaches the
    smith's trusted sender line and the console)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise ValueError("subject must not be blank")
    if len(text) > MAX_SUBJECT_CHARS:
        raise ValueError(f"subject may hold at most {MAX_SUBJECT_CHARS} characters")
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        raise ValueError(f"subject may hold only printable characters (found U+{ord(bad):04X})")
    return text


class CallerTokenCreate(BaseModel):
    subject: str = Field(min_length=1, max_length=200,
                         description="Who calls (a person, an app): unique among this deployment's live "
                                     "tokens; on an agent target it keys the caller's own smith.")
    name: str = Field(default="", max_length=200, description="A label for people.")

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return clean_subject(value)


async def _deployment(session: AsyncSession, actor: Actor, deployment_id: str) -> Deployment:
    """The MCP deployment whose callers this actor manages: admins, or the target smith's own token."""
    deployment = await get_deployment(session, actor=actor, deployment_id=deployment_id)
    if deployment.kind != MCP_KIND:
        raise Conflict(f"deployment {deployment_id} is not an MCP deployment; caller tokens exist only there",
                       code="not_mcp_deployment")
    return deployment


async def create_caller_token(session: AsyncSession, *, actor: Actor, deployment_id: str,
                              body: CallerTokenCreate) -> MintedToken:
    deployment = await _deployment(session, actor, deployment_id)
    if deployment.status != "active":
        raise Conflict(f"deployment {deployment_id} is {deployment.status}", code="deployment_not_active")
    value = new_value(MCP_CALLER)
    token = ApiToken(id=new_id("tok"), project_id=deployment.project_id, kind=MCP_CALLER, subject=body.subject,
                     name=body.name, token_hash=hash_token(value), hint=value[-4:], deployment_id=deployment.id)
    try:
        async with session.begin_nested():  # the partial unique index decides, also under concurrency
            session.add(token)
    except IntegrityError:
        raise Conflict(f"deployment {deployment_id} already has a live caller token for {body.subject!r}; "
                       "revoke it first", code="caller_subject_taken", field="subject") from None
    await record_event(session, project_id=token.project_id, type="token.created", deployment_id=deployment.id,
                       data={"token_id": token.id, "kind": token.kind, "subject": token.subject,
                             "deployment_id": deployment.id})
    return MintedToken(**TokenView.of(token).model_dump(), token=value)


async def list_caller_tokens(session: AsyncSession, *, actor: Actor, deployment_id: str,
                             include_revoked: bool = False, limit: int | None = None,
                             cursor: str | None = None) -> Page[ApiToken]:
    deployment = await _deployment(session, actor, deployment_id)
    stmt = select(ApiToken).where(ApiToken.deployment_id == deployment.id, ApiToken.kind == MCP_CALLER)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    return await paginate(session, stmt, ApiToken.id, limit=limit, cursor=cursor)


async def revoke_caller_token(session: AsyncSession, *, actor: Actor, deployment_id: str,
                              token_id: str) -> ApiToken:
    """Revoke one caller token of this deployment (its minted smith, memory and threads stay: a new
    token with the same subject comes back to them)."""
    deployment = await _deployment(session, actor, deployment_id)
    token = await session.get(ApiToken, token_id)
    if token is None or token.kind != MCP_CALLER or token.deployment_id != deployment.id:
        raise NotFound(f"no caller token {token_id} on deployment {deployment_id}", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await record_event(session, project_id=token.project_id, type="token.revoked", deployment_id=deployment.id,
                           data={"token_id": token.id, "kind": token.kind, "subject": token.subject,
                                 "deployment_id": deployment.id})
    return token
