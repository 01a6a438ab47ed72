"""Every error, once, as {"error": {"code", "message", ...}} with the right HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.access import refusal_before_parsing
from app.services import errors as domain
from channels.redact import redact

log = logging.getLogger("ingram.api")

_STATUS: dict[type[domain.DomainError], int] = {
    domain.Unauthorized: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Invalid: 422,
    domain.RateLimited: 429,
}

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
}


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `model.temperature`.")
    message: str


class ErrorBody(BaseModel):
    # Domain errors may add details of their own (e.g. the id of the deployment in the way).
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable machine code, e.g. `not_found`, `invalid_request`, `rate_limited`.")
    message: str = Field(description="For people; may change between versions.")
    field: str | None = Field(default=None, description="The request field the error is about, when there is one.")
    errors: list[FieldProblem] | None = Field(default=None, description="422: every invalid field.")


class ErrorEnvelope(BaseModel):
    """The body of every error answer of the API (not of the browser pages' HTML)."""

    error: ErrorBody


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: an unsupported `IC-Api-Version`, a body that is not JSON (`invalid_json`), or a request "
         "the provider refused.",
    401: "No bearer token, or one that is unknown, malformed or revoked (`missing_token`, `invalid_token`).",
    403: "The token may not do this: an admin-only operation, another smith's resource, or an MCP caller token.",
    404: "Something the request names does not exist (for this token).",
    409: "The resource's current state does not allow this (e.g. revoked, finished, already bound).",
    413: "The request body is larger than the server accepts (`payload_too_large`).",
    422: "A field is invalid: `field` names the first one, `errors` lists them all.",
    429: "Too many refused requests from this address (with `Retry-After`), too many open streams, or a run quota.",
    500: "An internal error (`internal_error`); the server log has the details.",
}


def error_responses(*statuses: int, descriptions: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an operation for errors only it answers (app.api.contract adds the shared ones)."""
    said = {**ERROR_DESCRIPTIONS, **(descriptions or {})}
    return {status: {"model": ErrorEnvelope, "description": said[status]} for status in statuses}


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": redact(message)}  # no provider credentials
    body.update({k: v for k, v in extra.items() if v is not None})
    all_headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return JSONResponse({"error": body}, status_code=status, headers=all_headers or None)


def status_of(exc: domain.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.DomainError)
    return error_response(status_of(exc), exc.code, exc.message, field=exc.field, **exc.details)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    field = _field_of(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        # FastAPI decodes JSON before it solves dependencies: 401/403 still come first.
        if (refusal := await refusal_before_parsing(request)) is not None:
            return await _domain(request, refusal)
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    details = [{"field": _field_of(p.get("loc", ())), "message": p.get("msg")} for p in problems]
    code = str(first.get("type")) if first.get("type") in domain.VALIDATION_CODES else "invalid_request"
    return error_response(422, code, message, field=field, errors=details)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)  # e.g. a 405's Allow


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "an internal error occurred; see the server log")


# For plain Starlette apps in front of the API (app.api.webhooks.front): the same answers.
HANDLERS: dict[Any, Any] = {domain.DomainError: _domain, StarletteHTTPException: _http, Exception: _unexpected}


def install_error_handlers(api: FastAPI) -> None:
    for exc_class, handler in {**HANDLERS, RequestValidationError: _validation}.items():
        api.add_exception_handler(exc_class, handler)
