"""Domain errors with stable machine codes. ``app.api.errors`` maps each class to HTTP once."""

from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.details = details or {}


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Invalid(DomainError):
    code = "invalid_request"


class RateLimited(DomainError):
    code = "rate_limited"


# Validation failures with a code of their own: a pydantic ``PydanticCustomError`` of this type is
# answered 422 with the type as its code, instead of ``invalid_request`` (app/api/errors.py).
VALIDATION_CODES = frozenset({"provider_metadata_too_large"})
