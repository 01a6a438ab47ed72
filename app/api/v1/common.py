"""Shapes shared by the /v1 routers."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.services.pagination import MAX_LIMIT

T = TypeVar("T")


class ListResponse(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=100, description="`next_cursor` of the previous page.")]
