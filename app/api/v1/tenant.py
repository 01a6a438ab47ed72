from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query, Response

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import deliveries, telegram
from app.services.deliveries import DeliveryView
from app.services.integrations import find_integration
from app.services.runtime import get_runtime
from app.services.telegram import TelegramPut, TelegramView
from jobs.delivery import wake_deliverers

router = APIRouter(tags=["integrations"])


@router.put("/tenant/telegram", response_model=TelegramView, openapi_extra=ADMIN_ONLY)
async def put_telegram(body: TelegramPut, actor: CurrentActor, session: Session) -> TelegramView:
    """Validate the bot token with Telegram, store it encrypted and register the webhook (or poll)."""
    integration = await telegram.connect(session, actor=actor, runtime=get_runtime(), body=body)
    return TelegramView.of(integration, get_runtime())


@router.get("/tenant/telegram", response_model=TelegramView, openapi_extra=ADMIN_ONLY)
async def get_telegram(actor: CurrentActor, session: Session) -> TelegramView:
    actor.require_admin()
    return TelegramView.of(await find_integration(session, project_id=actor.project_id, kind="telegram"),
                           get_runtime())


@router.delete("/tenant/telegram", status_code=204, openapi_extra=ADMIN_ONLY)
async def delete_telegram(actor: CurrentActor, session: Session) -> Response:
    await telegram.disconnect(session, actor=actor, runtime=get_runtime())
    return Response(status_code=204)


@router.get("/deliveries", response_model=ListResponse[DeliveryView], tags=["deliveries"], openapi_extra=ADMIN_ONLY)
async def list_deliveries(actor: CurrentActor, session: Session, limit: Limit = 50, cursor: Cursor = None,
                          status: str | None = Query(default=None, pattern="^(" + "|".join(deliveries.STATUSES) + ")$"),
                          run_id: str | None = Query(default=None, max_length=40)) -> ListResponse[DeliveryView]:
    """Outbound messages; `status=dead` lists the dead letters with their reasons."""
    page = await deliveries.list_deliveries(session, actor=actor, status=status, run_id=run_id, limit=limit,
                                            cursor=cursor)
    return ListResponse(data=[DeliveryView.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryView, tags=["deliveries"])
async def replay_delivery(delivery_id: str, actor: CurrentActor, session: Session,
                          background: BackgroundTasks) -> DeliveryView:
    entry = await deliveries.replay(session, actor=actor, delivery_id=delivery_id)
    background.add_task(wake_deliverers)
    return DeliveryView.of(entry)
