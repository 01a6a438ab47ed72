from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import deliveries, linkedin_consent, tenant_setup
from app.services.deliveries import DeliveryView
from app.services.linkedin_consent import ConsentLink
from app.services.runtime import get_runtime
from app.services.tenant_setup import IntegrationStatus
from channels import REGISTRY

router = APIRouter(tags=["integrations"])


def _tenant_routes(kind: str, put_model: type[BaseModel], display: str) -> None:
    """PUT/GET/DELETE /v1/tenant/{kind}, from the channel's declared body (channels.base.Channel.Put)."""

    async def put(body: BaseModel, actor: CurrentActor, session: Session) -> IntegrationStatus:
        return await tenant_setup.connect(session, actor=actor, runtime=get_runtime(), kind=kind, body=body)

    put.__annotations__ = {**put.__annotations__, "body": put_model}  # FastAPI reads the body's model here

    async def get(actor: CurrentActor, session: Session) -> IntegrationStatus:
        return await tenant_setup.show(session, actor=actor, runtime=get_runtime(), kind=kind)

    async def delete(actor: CurrentActor, session: Session) -> Response:
        await tenant_setup.disconnect(session, actor=actor, runtime=get_runtime(), kind=kind)
        return Response(status_code=204)

    path = f"/tenant/{kind}"
    router.put(path, response_model=IntegrationStatus, openapi_extra=ADMIN_ONLY, operation_id=f"put_{kind}",
               summary=f"Connect {display}",
               description=f"Validate the {display} credentials with the provider, store the secrets "
                           "encrypted and register what can be registered.",
               responses=error_responses(409))(put)  # settings the channel refuses as given (settings_problem)
    router.get(path, response_model=IntegrationStatus, openapi_extra=ADMIN_ONLY, operation_id=f"get_{kind}",
               summary=f"Show the {display} integration",
               description="Its status and the URLs to give the provider; never a secret.")(get)
    router.delete(path, status_code=204, openapi_extra=ADMIN_ONLY, operation_id=f"delete_{kind}",
                  summary=f"Disconnect {display}", responses=error_responses(404))(delete)  # not connected


def _patch_route(kind: str, patch_model: type[BaseModel], display: str) -> None:
    """PATCH /v1/tenant/{kind}: public settings changed on their own (channels.base.Channel.Patch)."""

    async def patch(body: BaseModel, actor: CurrentActor, session: Session) -> IntegrationStatus:
        return await tenant_setup.update(session, actor=actor, runtime=get_runtime(), kind=kind, body=body)

    patch.__annotations__ = {**patch.__annotations__, "body": patch_model}
    router.patch(f"/tenant/{kind}", response_model=IntegrationStatus, openapi_extra=ADMIN_ONLY,
                 operation_id=f"patch_{kind}", summary=f"Change {display} settings",
                 description="Change settings that need no new credentials; the secrets stay as they are.",
                 responses=error_responses(404, 409))(patch)


for _kind, _channel in REGISTRY.items():
    _tenant_routes(_kind, _channel.Put, _channel.display_name)
    if _channel.Patch is not None:
        _patch_route(_kind, _channel.Patch, _channel.display_name)


@router.post("/tenant/linkedin/consent", response_model=ConsentLink, status_code=201, openapi_extra=ADMIN_ONLY,
             operation_id="linkedin_consent_link", summary="Make a LinkedIn consent link",
             description="A one-time link (7 days) for an administrator of the Page: it leads to LinkedIn's consent "
                         "screen, and the tokens LinkedIn gives are stored encrypted. An earlier link stops working.",
             responses=error_responses(404))  # LinkedIn not connected
async def linkedin_consent_link(actor: CurrentActor, session: Session) -> ConsentLink:
    return await linkedin_consent.issue_link(session, actor=actor, runtime=get_runtime())


@router.get("/deliveries", response_model=ListResponse[DeliveryView], tags=["deliveries"], openapi_extra=ADMIN_ONLY)
async def list_deliveries(actor: CurrentActor, session: Session, limit: Limit = 50, cursor: Cursor = None,
                          status: str | None = Query(default=None, pattern="^(" + "|".join(deliveries.STATUSES) + ")$"),
                          run_id: str | None = Query(default=None, max_length=40)) -> ListResponse[DeliveryView]:
    """Outbound messages; `status=dead` lists the dead letters with their reasons."""
    page = await deliveries.list_deliveries(session, actor=actor, status=status, run_id=run_id, limit=limit,
                                            cursor=cursor)
    return ListResponse(data=[DeliveryView.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryView, tags=["deliveries"],
             responses=error_responses(409))
async def replay_delivery(delivery_id: str, actor: CurrentActor, session: Session) -> DeliveryView:
    entry = await deliveries.replay(session, actor=actor, delivery_id=delivery_id)
    return DeliveryView.of(entry)
