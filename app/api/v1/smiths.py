from __future__ import annotations

from fastapi import APIRouter, Query, Response

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import memory, smiths, tokens
from app.services.memory import MemoryPut, MemoryView
from app.services.smiths import SmithCreate, SmithUpdate, SmithView
from app.services.tokens import MintedToken, SmithTokenCreate

router = APIRouter(prefix="/smiths", tags=["smiths"])


@router.post("", status_code=201, response_model=SmithView, openapi_extra=ADMIN_ONLY,
             responses=error_responses(404))  # the agent_id
async def create_smith(body: SmithCreate, actor: CurrentActor, session: Session) -> SmithView:
    return SmithView.of(await smiths.create_smith(session, actor=actor, body=body))


@router.get("", response_model=ListResponse[SmithView])
async def list_smiths(actor: CurrentActor, session: Session, limit: Limit = 50,
                      cursor: Cursor = None,
                      agent_id: str | None = Query(default=None, max_length=40)) -> ListResponse[SmithView]:
    page = await smiths.list_smiths(session, actor=actor, agent_id=agent_id, limit=limit,
                                    cursor=cursor)
    return ListResponse(data=[SmithView.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/{smith_id}", response_model=SmithView)
async def get_smith(smith_id: str, actor: CurrentActor, session: Session) -> SmithView:
    return SmithView.of(await smiths.get_smith(session, actor=actor, smith_id=smith_id))


@router.patch("/{smith_id}", response_model=SmithView)
async def update_smith(smith_id: str, body: SmithUpdate, actor: CurrentActor,
                       session: Session) -> SmithView:
    return SmithView.of(await smiths.update_smith(session, actor=actor, smith_id=smith_id, body=body))


@router.delete("/{smith_id}", status_code=204, openapi_extra=ADMIN_ONLY)
async def delete_smith(smith_id: str, actor: CurrentActor, session: Session) -> Response:
    await smiths.delete_smith(session, actor=actor, smith_id=smith_id)
    return Response(status_code=204)


@router.post("/{smith_id}/tokens", status_code=201, response_model=MintedToken, openapi_extra=ADMIN_ONLY)
async def mint_smith_token(smith_id: str, actor: CurrentActor, session: Session,
                           body: SmithTokenCreate | None = None) -> MintedToken:
    """Mint a token scoped to this smith. The value is in this response only."""
    return await tokens.create_smith_token(session, actor=actor, smith_id=smith_id,
                                           body=body or SmithTokenCreate())


@router.get("/{smith_id}/memory", response_model=ListResponse[MemoryView])
async def list_memory(smith_id: str, actor: CurrentActor, session: Session, limit: Limit = 50,
                      cursor: Cursor = None) -> ListResponse[MemoryView]:
    page = await memory.list_memory(session, actor=actor, smith_id=smith_id, limit=limit, cursor=cursor)
    return ListResponse(data=[MemoryView.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/{smith_id}/memory/{key:path}", response_model=MemoryView)
async def get_memory(smith_id: str, key: str, actor: CurrentActor, session: Session) -> MemoryView:
    return MemoryView.of(await memory.get_memory(session, actor=actor, smith_id=smith_id, key=key))


@router.put("/{smith_id}/memory/{key:path}", response_model=MemoryView)
async def put_memory(smith_id: str, key: str, body: MemoryPut, actor: CurrentActor,
                     session: Session) -> MemoryView:
    entry = await memory.put_memory(session, actor=actor, smith_id=smith_id, key=key,
                                    value=body.value)
    return MemoryView.of(entry)


@router.delete("/{smith_id}/memory/{key:path}", status_code=204)
async def delete_memory(smith_id: str, key: str, actor: CurrentActor, session: Session) -> Response:
    await memory.delete_memory(session, actor=actor, smith_id=smith_id, key=key)
    return Response(status_code=204)
