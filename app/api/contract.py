"""The OpenAPI document's shared half: the error answers every operation can get, said once here.

FastAPI documents what a route declares (its success answer, ``responses=`` of its decorator). The
errors that come from machinery shared by many routes are added here, from what each route is made
of, so routes stay thin and generated ones (``app.api.v1.tenant``'s loop over the channel registry)
are documented like the rest:

- every operation: 413 and 429 (``app.api.limits`` sits in front of every request) and 500
  (``app.api.errors``' last-resort handler);
- behind the /v1 ``authorized`` dependency: 400 (``IC-Api-Version``), 401 (with ``WWW-Authenticate``),
  403 (``app.api.access``) and the bearer security scheme; 404 when the path names a resource;
- wherever FastAPI validates parameters or a body: 422, in the envelope instead of FastAPI's own shape.

Errors only some operations answer (409, a 404 for a resource named in the body, a webhook's 401) are
declared on their routes with ``app.api.errors.error_responses``. Every error body is ``ErrorEnvelope``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from app.api.deps import authorized
from app.api.errors import ERROR_DESCRIPTIONS, ErrorEnvelope

BEARER_SCHEME = "bearerAuth"
ENVELOPE_REF = f"#/components/schemas/{ErrorEnvelope.__name__}"
EVERY_OPERATION = (413, 429, 500)
AUTHORIZED_OPERATION = (400, 401, 403)
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait, when the address is throttled.",
                          "schema": {"type": "integer"}}},
}


def install(api: FastAPI) -> None:
    """Serve the completed document at ``api.openapi_url``. FastAPI caches its document (and builds a
    new one when routes are added); each new one is completed once."""
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = FastAPI.openapi(api)
        if not completed or completed[0] is not document:
            completed[:] = [complete(api, document)]
        return document

    api.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def operations(api: FastAPI) -> Iterator[RouteContext]:
    """The documented operations' routes, as FastAPI sees them (included routers' prefix, tags and
    dependencies applied)."""
    for route in iter_route_contexts(api.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            yield route


def is_authorized(route: RouteContext) -> bool:
    """Behind the /v1 router's token and scope check (``app.api.deps.authorized``)."""
    return any(dependency.dependency is authorized for dependency in route.dependencies)


def error_statuses(route: RouteContext, declared: dict[str, Any]) -> list[int]:
    """The shared error answers of one operation, from what the route is made of."""
    statuses = list(EVERY_OPERATION)
    if is_authorized(route):
        statuses += AUTHORIZED_OPERATION
        if route.param_convertors:  # a resource in the path: unknown, or not this token's
            statuses.append(404)
    if "422" in declared:  # FastAPI validates parameters or a body here
        statuses.append(422)
    return sorted(statuses)


def error_answer(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": ERROR_DESCRIPTIONS[status],
                              "content": {"application/json": {"schema": {"$ref": ENVELOPE_REF}}}}
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


def complete(api: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add the shared error answers, the envelope's schema and the bearer scheme to ``document``."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas[ErrorEnvelope.__name__] = envelope
    for route in operations(api):
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            for status in error_statuses(route, responses):
                if not _declared_by_route(responses.get(str(status))):
                    responses[str(status)] = error_answer(status)
            operation["responses"] = dict(sorted(responses.items()))
            if is_authorized(route):
                operation["security"] = [{BEARER_SCHEME: []}]
    if any(is_authorized(route) for route in operations(api)):
        components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
            "type": "http", "scheme": "bearer",
            "description": "An admin token (`ic_admin_…`) or a smith token (`ic_smith_…`).",
        }
    if '/HTTPValidationError"' not in json.dumps(document["paths"]):  # every 422 is the envelope now
        for name in _FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)
    return document


def _declared_by_route(answer: dict[str, Any] | None) -> bool:
    """A route's own declaration wins, except FastAPI's generated 422 (not our envelope)."""
    if answer is None:
        return False
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    return not schema.get("$ref", "").endswith("/HTTPValidationError")
