from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.access import ADMIN_ONLY
from app.api.deps import CurrentActor, Session
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import tokens
from app.services.tokens import MintedToken, TokenCreate, TokenView

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=201, response_model=MintedToken, openapi_extra=ADMIN_ONLY)
async def create_token(body: TokenCreate, actor: CurrentActor, session: Session) -> MintedToken:
    """Create an admin token. The value is in this response only."""
    return await tokens.create_admin_token(session, actor=actor, body=body)


@router.get("", response_model=ListResponse[TokenView], openapi_extra=ADMIN_ONLY)
async def list_tokens(actor: CurrentActor, session: Session, limit: Limit = 50,
                      cursor: Cursor = None,
                      kind: str | None = Query(default=None, pattern="^(admin|smith|mcp)$"),
                      smith_id: str | None = Query(default=None, max_length=40),
                      include_revoked: bool = False) -> ListResponse[TokenView]:
    page = await tokens.list_tokens(session, actor=actor, kind=kind, smith_id=smith_id,
                                    include_revoked=include_revoked, limit=limit, cursor=cursor)
    return ListResponse(data=[TokenView.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.delete("/{token_id}", response_model=TokenView)
async def revoke_token(token_id: str, actor: CurrentActor, session: Session) -> TokenView:
    return TokenView.of(await tokens.revoke_token(session, actor=actor, token_id=token_id))
