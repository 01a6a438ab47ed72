"""Request dependencies: one transaction per request, bearer auth and scopes, the API version header,
no U+0000 in any input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import access
from app.services.actors import Actor
from app.services.errors import DomainError, Invalid
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
    refuse_nul_in_url(request)  # before the path's ids are looked up (it says nothing about them)
    await access.check(session, actor, request)
    await refuse_nul_in_body(request)
    return actor


# U+0000 is refused in every /v1 input (422 `nul_character`), whatever the database: PostgreSQL cannot
# store it in text (nor compare a column with it), and an answer must not depend on the backend.
_NUL = "\x00"
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _refuse_nul(field: str) -> Invalid:
    return Invalid(f"{field}: must not contain the character U+0000", code="nul_character", field=field)


def refuse_nul_in_url(request: Request) -> None:
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if _NUL in value or _NUL in name:
            raise _refuse_nul(name)


async def refuse_nul_in_body(request: Request) -> None:
    if request.method not in _METHODS_WITH_BODY:
        return
    body = await request.body()  # already read by FastAPI: cached
    if b"\\u0000" not in body:  # JSON carries U+0000 only escaped; most bodies stop here
        return
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # not JSON: FastAPI has answered it (400 invalid_json, or 422)
    if (field := _nul_field(decoded, "")) is not None:
        raise _refuse_nul(field)


def _nul_field(value: Any, path: str) -> str | None:
    """The dotted path of the first string (or key) holding U+0000 in a decoded JSON value."""
    if isinstance(value, str):
        return path if _NUL in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if _NUL in str(key):
            return here
        if (found := _nul_field(item, here)) is not None:
            return found
    return None
