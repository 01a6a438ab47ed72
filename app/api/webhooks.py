"""The one generic webhook receiver: ``POST /v1/{kind}/webhook/{tenant}`` (DESIGN §5).

No auth header and no API version: providers call it. The channel verifies the provider's own
signature or secret over the raw bytes before anything is parsed; URLs carry no secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.services.errors import NotFound
from app.services.inbound import receive_webhook
from app.services.runtime import get_runtime
from channels import REGISTRY
from channels.types import RawRequest

router = APIRouter(tags=["webhooks"])
MAX_BODY = 1_000_000


@router.api_route("/v1/{kind}/webhook/{tenant}", methods=["GET", "POST"])
async def webhook(kind: str, tenant: str, request: Request) -> Response:
    if kind not in REGISTRY:
        raise NotFound(f"no webhook for {kind!r}", code="unknown_kind")
    body = await request.body()
    if len(body) > MAX_BODY:
        return Response('{"error":{"code":"payload_too_large","message":"body too large"}}', status_code=413,
                        media_type="application/json")
    raw = RawRequest(method=request.method, path=request.url.path, headers=dict(request.headers),
                     query=dict(request.query_params), body=body)
    answer = await receive_webhook(get_runtime(), kind=kind, tenant=tenant, raw=raw)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
