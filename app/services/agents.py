"""Agents: instructions, model settings and which tools need a person's approval."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import SecretDecryptError
from app.services.actors import Actor
from app.services.bindings import revoke_catch_alls
from app.services.errors import Conflict, Invalid, NotFound
from app.services.events import record_event
from app.services.pagination import Page, paginate
from app.services.runtime import get_runtime
from jobs.egress import UrlNotAllowed, check_model_url
from jobs.model_access import model_key_binding
from models import Agent, Smith
from models.types import new_id, utcnow

ToolName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class ModelView(BaseModel):
    """Per-agent overrides of the IC_MODEL_* settings, as stored and shown; every field optional."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["builtin", "openai", "anthropic"] | None = None
    name: str | None = Field(default=None, max_length=200, description="Model name, e.g. gpt-4o")
    base_url: str | None = Field(
        default=None, max_length=500,
        description="The agent's own endpoint: https and a public address unless IC_ALLOW_PRIVATE_URLS "
                    "(else 422 model_url_not_allowed). IC_MODEL_API_KEY is never sent here: give api_key.")
    # strict: a JSON number only (lax mode would read `false` as 0 and `true` as 1)
    temperature: float | None = Field(default=None, ge=0, le=2, strict=True)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000, strict=True)


class ModelSettings(ModelView):
    """The overrides as written: ``api_key`` is write-only (stored encrypted, shown as a hint)."""

    api_key: str | None = Field(
        default=None, max_length=500,
        description="The agent's own model API key (write-only). Omit to keep the stored one (it is dropped "
                    "when base_url changes), \"\" to remove it.")


class SecretHint(BaseModel):
    set: bool
    last4: str


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=100_000)
    model: ModelSettings = Field(default_factory=ModelSettings)
    approval_required_tools: list[ToolName] = Field(default_factory=list, max_length=100)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=100_000)
    model: ModelSettings | None = None
    approval_required_tools: list[ToolName] | None = Field(default=None, max_length=100)


class AgentView(BaseModel):
    id: str
    name: str
    instructions: str
    model: ModelView
    model_api_key: SecretHint
    approval_required_tools: list[str]
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, agent: Agent) -> AgentView:
        return cls(
            id=agent.id, name=agent.name, instructions=agent.instructions,
            model=ModelView(**agent.model), model_api_key=_key_hint(agent),
            approval_required_tools=agent.approval_required_tools,
            created_at=agent.created_at.isoformat(), updated_at=agent.updated_at.isoformat(),
        )


def _key_hint(agent: Agent) -> SecretHint:
    if not agent.model_api_key_ciphertext:
        return SecretHint(set=False, last4="")
    try:
        key = get_runtime().secrets.decrypt(agent.model_api_key_ciphertext, bound_to=model_key_binding(agent.id))
    except SecretDecryptError:
        return SecretHint(set=True, last4="")
    return SecretHint(set=True, last4=key[-4:] if len(key) >= 12 else "")


async def _apply_model(agent: Agent, model: ModelSettings) -> None:
    """Store the overrides and the agent's own key; refuse a base URL the server must not call."""
    settings = get_runtime().settings
    if model.base_url:
        try:
            await check_model_url(model.base_url, allow_private=settings.allow_private_urls)
        except UrlNotAllowed as exc:
            raise Invalid(str(exc), code=exc.code, field="model.base_url") from exc
    previous_url = str((agent.model or {}).get("base_url") or "")
    agent.model = model.model_dump(exclude_none=True, exclude={"api_key"})
    if model.api_key is not None:
        key = model.api_key.strip()
        agent.model_api_key_ciphertext = (
            get_runtime().secrets.encrypt(key, bound_to=model_key_binding(agent.id)) if key else None)
    elif (model.base_url or "") != previous_url:
        agent.model_api_key_ciphertext = None  # a key given for one host never follows the URL to another


async def create_agent(session: AsyncSession, *, actor: Actor, body: AgentCreate) -> Agent:
    actor.require_admin()
    agent = Agent(
        id=new_id("agt"), project_id=actor.project_id, name=body.name.strip(),
        instructions=body.instructions, approval_required_tools=sorted(set(body.approval_required_tools)),
    )
    await _apply_model(agent, body.model)
    session.add(agent)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="agent.created",
                       data={"agent_id": agent.id, "name": agent.name})
    return agent


async def get_agent(session: AsyncSession, *, actor: Actor, agent_id: str) -> Agent:
    actor.require_admin()
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.project_id != actor.project_id:
        raise NotFound(f"no agent {agent_id}", code="agent_not_found")
    return agent


async def list_agents(
    session: AsyncSession, *, actor: Actor, limit: int | None = None, cursor: str | None = None
) -> Page[Agent]:
    actor.require_admin()
    stmt = select(Agent).where(Agent.project_id == actor.project_id)
    return await paginate(session, stmt, Agent.id, limit=limit, cursor=cursor)


async def update_agent(
    session: AsyncSession, *, actor: Actor, agent_id: str, body: AgentUpdate
) -> Agent:
    agent = await get_agent(session, actor=actor, agent_id=agent_id)
    if body.name is not None:
        agent.name = body.name.strip()
    if body.instructions is not None:
        agent.instructions = body.instructions
    if body.model is not None:
        await _apply_model(agent, body.model)
    if body.approval_required_tools is not None:
        agent.approval_required_tools = sorted(set(body.approval_required_tools))
    agent.updated_at = utcnow()
    session.add(agent)
    await session.flush()
    await record_event(session, project_id=actor.project_id, type="agent.updated",
                       data={"agent_id": agent.id, "name": agent.name})
    return agent


async def delete_agent(session: AsyncSession, *, actor: Actor, agent_id: str) -> None:
    """Refuses while smiths of the agent exist: deleting them is a separate, explicit act."""
    agent = await get_agent(session, actor=actor, agent_id=agent_id)
    smiths = (
        await session.execute(select(func.count()).select_from(Smith).where(Smith.agent_id == agent.id))
    ).scalar_one()
    if smiths:
        raise Conflict(
            f"agent {agent.id} still has {smiths} smith(s); delete them first",
            code="agent_has_smiths", details={"smith_count": smiths},
        )
    await revoke_catch_alls(session, project_id=actor.project_id, agent_id=agent.id)  # never a 500 later
    await session.delete(agent)
    await record_event(session, project_id=actor.project_id, type="agent.deleted",
                       data={"agent_id": agent.id, "name": agent.name})
