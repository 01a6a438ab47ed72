from __future__ import annotations

from fastapi import APIRouter

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.v1.common import ListResponse
from app.services import integrations
from app.services.integrations import IntegrationView, open_secrets
from app.services.runtime import get_runtime

router = APIRouter(prefix="/tenant", tags=["integrations"])


@router.get("/integrations", response_model=ListResponse[IntegrationView], openapi_extra=ADMIN_ONLY)
async def list_integrations(actor: CurrentActor, session: Session) -> ListResponse[IntegrationView]:
    """Every configured provider of the project. Secrets appear only as set/last-4 hints."""
    box = get_runtime().secrets
    rows = await integrations.list_integrations(session, actor=actor)
    return ListResponse(data=[IntegrationView.of(i, open_secrets(box, i)) for i in rows])
