"""What the agent loop reads of a run's agent, once per step transaction."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, Smith
from models.store.hot import Hot


class AgentSettings(NamedTuple):
    """What the loop uses of the run's agent (one hot read, not an ORM row)."""

    instructions: str
    model: dict[str, Any]
    approval_required_tools: list[str]
    id: str
    model_api_key_ciphertext: str | None


_AGENT_OF_SMITH = Hot(select(Agent.instructions, Agent.model, Agent.approval_required_tools, Agent.id,
                             Agent.model_api_key_ciphertext)
                      .join(Smith, Smith.agent_id == Agent.id).where(Smith.id == bindparam("smith_id")))


async def agent_of_smith(session: AsyncSession, *, smith_id: str) -> AgentSettings | None:
    """The smith's agent's settings; None when the smith or its agent no longer exists."""
    row = await _AGENT_OF_SMITH.first(session, {"smith_id": smith_id})
    return None if row is None else AgentSettings(*row)
