from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import CurrentActor, Session
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import events
from app.services.events import EventView

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=ListResponse[EventView])
async def list_events(actor: CurrentActor, session: Session, limit: Limit = 50,
                      cursor: Cursor = None,
                      type: str | None = Query(default=None, max_length=64,
                                               description="Exact type, or a prefix ending in '.'"),
                      smith_id: str | None = Query(default=None, max_length=40)) -> ListResponse[EventView]:
    page = await events.list_events(session, actor=actor, type=type, smith_id=smith_id,
                                    limit=limit, cursor=cursor)
    return ListResponse(data=[EventView.of(e) for e in page.items], next_cursor=page.next_cursor)
