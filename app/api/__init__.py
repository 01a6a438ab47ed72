"""The HTTP API: /v1 (REST), webhooks and MCP, mounted into Reflex via ``api_transformer``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Match

from app.api import mcp, slack_oauth, webhooks
from app.api.deps import authorized, check_api_version
from app.api.errors import error_response, install_error_handlers
from app.api.v1 import (
    agents,
    caller_tokens,
    deployments,
    events,
    integrations,
    runs,
    schedules,
    smiths,
    tenant,
    tokens,
)
from app.settings import API_VERSION


def build_api() -> FastAPI:
    api = FastAPI(
        title="Ingram Deployments API",
        version=API_VERSION,
        description=(
            "Deployments bind messaging surfaces to smiths and agents; schedules fire runs on "
            "cron. Authenticate with `Authorization: Bearer <token>`; send "
            f"`IC-Api-Version: {API_VERSION}`."
        ),
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    install_error_handlers(api)

    # Webhooks first: providers call them most, and routes are matched in order.
    api.include_router(webhooks.router)
    api.include_router(slack_oauth.router)  # a person's browser follows these: no API token
    # Scopes before bodies: who calls, and may they touch what the path names (app.api.access).
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_api_version), Depends(authorized)])
    for module in (agents, smiths, schedules, runs, deployments, caller_tokens, tenant, tokens, events, integrations):
        v1.include_router(module.router)
    api.include_router(v1)
    mcp.mount(api)  # POST /v1/deployments/{id}/mcp: before the catch-all below, which would answer 404

    @api.get("/v1/health", tags=["meta"], include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "api_version": API_VERSION}

    # Last: any other /v1 path answers JSON, never Reflex's HTML 404.
    @api.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    async def unknown(request: Request, path: str) -> JSONResponse:
        for route in api.routes:
            if route is not catch_all and route.matches(request.scope)[0] == Match.PARTIAL:
                return error_response(405, "method_not_allowed",
                                      f"{request.method} is not allowed on /v1/{path}")
        return error_response(404, "not_found", f"no such endpoint: /v1/{path}")

    catch_all = api.routes[-1]

    return api
