"""The one generic webhook receiver: ``POST /v1/{kind}/webhook/{tenant}`` (DESIGN §5).

No auth header and no API version: providers call it. The channel verifies the provider's own
signature or secret over the raw bytes before anything is parsed; URLs carry no secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from app.api.errors import HANDLERS, error_responses
from app.services.errors import DomainError, NotFound
from app.services.inbound import receive_webhook
from app.services.runtime import get_runtime
from channels import REGISTRY
from channels.types import RawRequest

router = APIRouter(tags=["webhooks"])
PATH = "/v1/{kind}/webhook/{tenant}"


async def receive(request: Request) -> Response:
    kind, tenant = request.path_params["kind"], request.path_params["tenant"]
    if kind not in REGISTRY:
        raise NotFound(f"no webhook for {kind!r}", code="unknown_kind")
    try:
        body = await request.body()  # sized by app.api.limits before it is read
    except ClientDisconnect as exc:  # the sender went away before its body was whole
        raise DomainError("the request body ended early", code="malformed_payload") from exc
    raw = RawRequest(method=request.method, path=request.url.path, headers=dict(request.headers),
                     query=dict(request.query_params), body=body)
    answer = await receive_webhook(get_runtime(), kind=kind, tenant=tenant, raw=raw)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


_REFUSALS = error_responses(400, 401, 404, descriptions={
    400: "The provider's payload could not be parsed (`malformed_payload`); nothing was stored.",
    401: "Not verified (`invalid_signature`): a bad signature or secret, an unknown tenant or an integration "
         "that is not connected answer alike, so there is nothing to enumerate.",
    404: "No channel of this kind (`unknown_kind`).",
})


_HANDSHAKE_REFUSALS = {**_REFUSALS, **error_responses(403, descriptions={
    403: "A subscription handshake that does not match (`verification_failed`, e.g. Meta's hub.verify_token).",
})}


@router.get(PATH, operation_id="verify_webhook", summary="A provider's verification request",
            responses=_HANDSHAKE_REFUSALS)
@router.post(PATH, operation_id="receive_webhook", summary="A provider's webhook", responses=_REFUSALS)
async def webhook(kind: str, tenant: str, request: Request) -> Response:
    """A provider's webhook (documented here; the server answers it through ``front``). The answer's
    body is the provider's own acknowledgement (or a verification challenge), not JSON of ours."""
    return await receive(request)


def front() -> Starlette:
    """The webhook receiver ahead of FastAPI (Reflex mounts everything else under it): providers
    call it most, and FastAPI's routing and middleware cost about a third as much again as storing
    the update (bench/README.md). Same function, same error answers."""
    return Starlette(routes=[Route(PATH, receive, methods=["GET", "POST"])], exception_handlers=HANDLERS)
