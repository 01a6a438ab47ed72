from __future__ import annotations

from fastapi import APIRouter, Query, Response

from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import deployments
from app.services.deployments import DeploymentCreate, DeploymentUpdate, DeploymentView

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.post("", status_code=201, response_model=DeploymentView, responses=error_responses(404, 409, 429))
async def create_deployment(body: DeploymentCreate, actor: CurrentActor, session: Session) -> DeploymentView:
    """Bind a surface to a smith or, with an agent target, the kind's catch-all. A Telegram smith
    binding answers a one-time `deep_link` (valid 7 days). Slack with `setup.mode = "provision"` and
    `setup.display_name` mints a dedicated Slack app for the smith and answers `pending` with its
    `slack_app_id` and `install_url` (429 `slack_app_cap_reached` past IC_SLACK_APP_CAP live apps);
    `setup.app_id` installs such an app again, into another workspace."""
    deployment, link = await deployments.create_deployment(session, actor=actor, body=body)
    return await deployments.view(session, deployment, link=link)


@router.get("", response_model=ListResponse[DeploymentView])
async def list_deployments(actor: CurrentActor, session: Session, limit: Limit = 50, cursor: Cursor = None,
                           kind: str | None = Query(default=None, pattern="^(" + "|".join(deployments.KINDS) + ")$"),
                           status: str | None = Query(default=None, pattern="^(pending|active|revoked)$"),
                           target_id: str | None = Query(default=None, max_length=40),
                           include_revoked: bool = Query(default=True, description="false hides revoked ones"),
                           ) -> ListResponse[DeploymentView]:
    page = await deployments.list_deployments(session, actor=actor, kind=kind, status=status, target_id=target_id,
                                              include_revoked=include_revoked, limit=limit, cursor=cursor)
    return ListResponse(data=await deployments.views(session, page.items), next_cursor=page.next_cursor)


@router.get("/{deployment_id}", response_model=DeploymentView)
async def get_deployment(deployment_id: str, actor: CurrentActor, session: Session) -> DeploymentView:
    return await deployments.view(session, await deployments.get_deployment(session, actor=actor,
                                                                         deployment_id=deployment_id))


@router.patch("/{deployment_id}", response_model=DeploymentView, responses=error_responses(409))
async def update_deployment(deployment_id: str, body: DeploymentUpdate, actor: CurrentActor,
                            session: Session) -> DeploymentView:
    return await deployments.view(session, await deployments.update_deployment(
        session, actor=actor, deployment_id=deployment_id, body=body))


@router.post("/{deployment_id}/link", response_model=DeploymentView, responses=error_responses(409))
async def new_link(deployment_id: str, actor: CurrentActor, session: Session) -> DeploymentView:
    """A new one-time start link; the previous one stops working."""
    deployment, link = await deployments.new_deep_link(session, actor=actor, deployment_id=deployment_id)
    return await deployments.view(session, deployment, link=link)


@router.delete("/{deployment_id}", status_code=204, responses=error_responses(409))
async def delete_deployment(deployment_id: str, actor: CurrentActor, session: Session,
                            keep_app: bool = Query(default=False, description="A dedicated Slack app's last "
                                                   "deployment deletes the app too, unless this is true.")
                            ) -> Response:
    await deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id, keep_app=keep_app)
    return Response(status_code=204)
