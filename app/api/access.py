"""Who may call a /v1 operation, checked before the body is validated (401/403 first, then 422).

One check (``check``), run by one router-level dependency (``app.api.deps.authorized``) on every /v1
operation: the bearer token, the operation's admin-only mark, and every resource the path names
(a smith token may touch only its own smith, and what belongs to it). FastAPI solves dependencies
before it validates the body, but it decodes JSON before either: a request whose body is not JSON
is checked here from the 400's error handler (``refusal_before_parsing``), so a caller without the
right token learns nothing about the body either way.

The services keep their own checks (the console calls them directly); this is the early copy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.services import deployments, runs, tokens
from app.services.actors import Actor
from app.services.errors import DomainError, Unauthorized
from app.services.runtime import get_runtime

ADMIN_ONLY_KEY = "x-admin-only"
ADMIN_ONLY: dict[str, Any] = {ADMIN_ONLY_KEY: True}  # openapi_extra of an operation only admins may call

# Path parameters and what a smith token may do with them. A name missing here is refused to smith
# tokens (fail closed): a new route naming a new kind of resource must say who may touch it.
_ADMIN_RESOURCES = frozenset({"agent_id", "token_id", "delivery_id"})
_FREE = frozenset({"key", "schedule_id"})  # checked with the smith_id beside them


async def authenticate(request: Request, session: AsyncSession) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("send Authorization: Bearer <token>",
                           code="missing_token" if not header else "invalid_token")
    return await tokens.authenticate(session, value.strip())


def admin_only(route: Any) -> bool:
    extra = getattr(route, "openapi_extra", None)
    return bool(extra and extra.get(ADMIN_ONLY_KEY))


async def check(session: AsyncSession, actor: Actor, request: Request) -> None:
    """Raise Forbidden (or NotFound for a named resource that does not exist for this caller)."""
    if admin_only(request.scope.get("route")):
        actor.require_admin()
    if actor.is_admin:
        return  # admins reach the whole project; the services answer 404 for unknown ids
    params: dict[str, str] = request.path_params
    for name, value in params.items():
        if name == "smith_id":
            actor.require_smith(value)
        elif name == "deployment_id":
            await deployments.get_deployment(session, actor=actor, deployment_id=value)
        elif name == "run_id":
            await runs.get_run(session, actor=actor, run_id=value)
        elif name == "token_id" and "deployment_id" in params:
            continue  # a caller token of that deployment: the service checks it belongs there
        elif name in _ADMIN_RESOURCES or name not in _FREE:
            actor.require_admin()


async def refusal_before_parsing(request: Request) -> DomainError | None:
    """For a /v1 request whose body could not be decoded: the 401/403 it would have got, if any."""
    if not request.url.path.startswith("/v1/") or request.scope.get("route") is None:
        return None
    try:
        async with get_runtime().transaction() as session:
            actor = await authenticate(request, session)
            await check(session, actor, request)
    except DomainError as refusal:
        return refusal
    return None
