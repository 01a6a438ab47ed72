from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import agents
from app.services.agents import AgentCreate, AgentUpdate, AgentView

router = APIRouter(prefix="/agents", tags=["agents"])


@router.post("", status_code=201, response_model=AgentView, openapi_extra=ADMIN_ONLY)
async def create_agent(body: AgentCreate, actor: CurrentActor, session: Session) -> AgentView:
    return AgentView.of(await agents.create_agent(session, actor=actor, body=body))


@router.get("", response_model=ListResponse[AgentView], openapi_extra=ADMIN_ONLY)
async def list_agents(actor: CurrentActor, session: Session, limit: Limit = 50,
                      cursor: Cursor = None) -> ListResponse[AgentView]:
    page = await agents.list_agents(session, actor=actor, limit=limit, cursor=cursor)
    return ListResponse(data=[AgentView.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{agent_id}", response_model=AgentView)
async def get_agent(agent_id: str, actor: CurrentActor, session: Session) -> AgentView:
    return AgentView.of(await agents.get_agent(session, actor=actor, agent_id=agent_id))


@router.patch("/{agent_id}", response_model=AgentView)
async def update_agent(agent_id: str, body: AgentUpdate, actor: CurrentActor,
                       session: Session) -> AgentView:
    return AgentView.of(await agents.update_agent(session, actor=actor, agent_id=agent_id, body=body))


@router.delete("/{agent_id}", status_code=204, responses=error_responses(409))
async def delete_agent(agent_id: str, actor: CurrentActor, session: Session) -> Response:
    await agents.delete_agent(session, actor=actor, agent_id=agent_id)
    return Response(status_code=204)
