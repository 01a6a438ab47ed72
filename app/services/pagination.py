"""Cursor pagination, newest first. Ids sort by creation time, so the cursor is the last id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import Invalid

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


async def paginate(
    session: AsyncSession, stmt: Select[Any], id_column: Any, *, limit: int | None,
    cursor: str | None,
) -> Page[Any]:
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if cursor:
        stmt = stmt.where(id_column < cursor)
    rows = (await session.execute(stmt.order_by(id_column.desc()).limit(limit + 1))).scalars()
    items = list(rows)
    has_more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1].id if has_more and items else None)
