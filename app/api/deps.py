"""Request dependencies: one transaction per request, bearer auth and scopes, the API version header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import access
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.runtime import get_runtime
from app.settings import API_VERSION, SUPPORTED_API_VERSIONS


async def _session() -> AsyncIterator[AsyncSession]:
    # Commits before the response is sent (scope="function"): a 2xx means it is stored.
    async with get_runtime().transaction() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session, scope="function")]


async def check_api_version(
    response: Response,
    ic_api_version: Annotated[
        str | None,
        Header(alias="IC-Api-Version", description=f"Defaults to {API_VERSION}."),
    ] = None,
) -> str:
    version = ic_api_version or API_VERSION
    if version not in SUPPORTED_API_VERSIONS:
        raise DomainError(
            f"unsupported IC-Api-Version {version!r}; supported: {', '.join(sorted(SUPPORTED_API_VERSIONS))}",
            code="unsupported_api_version",
        )
    response.headers["IC-Api-Version"] = version
    return version


async def _actor(request: Request, session: Session) -> Actor:
    return await access.authenticate(request, session)


CurrentActor = Annotated[Actor, Depends(_actor)]


async def authorized(request: Request, actor: CurrentActor, session: Session) -> Actor:
    """The /v1 router's dependency: the token, the operation's admin-only mark and every resource the
    path names are checked before FastAPI validates the body (app.api.access)."""
    await access.check(session, actor, request)
    return actor
