"""Every error, once, as {"error": {"code", "message", ...}} with the right HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": redact(message)}  # no provider credentials
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


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
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "an internal error occurred; see the server log")


# For plain Starlette apps in front of the API (app.api.webhooks.front): the same answers.
HANDLERS: dict[Any, Any] = {domain.DomainError: _domain, StarletteHTTPException: _http, Exception: _unexpected}


def install_error_handlers(api: FastAPI) -> None:
    for exc_class, handler in {**HANDLERS, RequestValidationError: _validation}.items():
        api.add_exception_handler(exc_class, handler)
