"""MCP caller tokens, minted on an MCP deployment (``app.services.mcp_tokens``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import mcp_tokens
from app.services.mcp_tokens import CallerTokenCreate
from app.services.tokens import MintedToken, TokenView

# 409 `not_mcp_deployment` on every one of them.
router = APIRouter(prefix="/deployments/{deployment_id}/tokens", tags=["deployments"],
                   responses=error_responses(409))


@router.post("", status_code=201, response_model=MintedToken)
async def create_caller_token(deployment_id: str, body: CallerTokenCreate, actor: CurrentActor,
                              session: Session) -> MintedToken:
    """Mint an `ic_mcp_…` caller token for this MCP deployment: it calls this deployment's MCP
    endpoint and nothing else. On an agent target each subject gets its own smith. The value is in
    this response only."""
    return await mcp_tokens.create_caller_token(session, actor=actor, deployment_id=deployment_id, body=body)


@router.get("", response_model=ListResponse[TokenView])
async def list_caller_tokens(deployment_id: str, actor: CurrentActor, session: Session, limit: Limit = 50,
                             cursor: Cursor = None, include_revoked: bool = False) -> ListResponse[TokenView]:
    page = await mcp_tokens.list_caller_tokens(session, actor=actor, deployment_id=deployment_id,
                                               include_revoked=include_revoked, limit=limit, cursor=cursor)
    return ListResponse(data=[TokenView.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.delete("/{token_id}", response_model=TokenView)
async def revoke_caller_token(deployment_id: str, token_id: str, actor: CurrentActor,
                              session: Session) -> TokenView:
    return TokenView.of(await mcp_tokens.revoke_caller_token(session, actor=actor, deployment_id=deployment_id,
                                                             token_id=token_id))
