"""Request dependencies: one transaction per request, bearer auth, the API version header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import tokens
from app.services.actors import Actor
from app.services.errors import DomainError, Unauthorized
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
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(
            "send Authorization: Bearer <token>", code="missing_token" if not header else "invalid_token"
        )
    return await tokens.authenticate(session, value.strip())


CurrentActor = Annotated[Actor, Depends(_actor)]
