"""The HTTP API: /v1 (REST), webhooks and MCP, mounted into Reflex via ``api_transformer``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from app.api import contract, linkedin_oauth, mcp, slack_oauth, webhooks
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


class UnknownV1:
    """The /v1 catch-all, an ASGI app so that its route matches every method: 404, or 405 with ``Allow``."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    def allowed_methods(self, scope: Scope) -> list[str]:
        """Every method some other route answers on this path."""
        methods: set[str] = set()
        for route in iter_route_contexts(self.api.routes):  # included routers' routes too, with their prefix
            # Not this route nor the MCP endpoint (no methods: they take every one); PARTIAL is a path match.
            if route.methods and route.matches(scope)[0] != Match.NONE:
                methods |= route.methods
        return sorted(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if allowed := self.allowed_methods(scope):
            response = error_response(405, "method_not_allowed", f"{scope['method']} is not allowed on {path}",
                                      headers={"Allow": ", ".join(allowed)})
        else:
            response = error_response(404, "not_found", f"no such endpoint: {path}")
        await response(scope, receive, send)


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
    api.include_router(linkedin_oauth.router)
    # Scopes before bodies: who calls, and may they touch what the path names (app.api.access).
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_api_version), Depends(authorized)])
    for module in (agents, smiths, schedules, runs, deployments, caller_tokens, tenant, tokens, events, integrations):
        v1.include_router(module.router)
    api.include_router(v1)
    mcp.mount(api)  # POST /v1/deployments/{id}/mcp: before the catch-all below, which would answer 404

    @api.get("/v1/health", tags=["meta"], include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "api_version": API_VERSION}

    # Last: any other /v1 path answers JSON, never Reflex's HTML 404; a known path with another method
    # (any method, TRACE included) answers 405 with the methods it has.
    api.add_route("/v1/{path:path}", UnknownV1(api), include_in_schema=False)
    contract.install(api)  # the shared error answers, in the document at /v1/openapi.json
    return api
