"""Hot statements: prebuilt SQL run on the driver connection of the session's transaction.

Only the store (``models/store/``) builds and runs them; services and jobs call the store's
functions and get plain values back (``tests/test_import_direction.py`` holds that line).

Measured (``bench/pipeline.py``), one ``session.execute`` of a prebuilt Core insert cost about
56 us of SQLAlchemy's machinery (ORM execution, execution context, cursor result) around 7 us of
SQLite's own work, and an inbound Telegram message runs some thirty statements. A ``Hot`` statement
is compiled once per dialect with SQLAlchemy's own compiler, bind and result processors (so values
go in and come out exactly as through the session: UTC datetimes, JSON), then each execution only
converts its parameters and calls the driver: SQLite's ``sqlite3`` synchronously (the engine's
connection is ``models/inline_sqlite.py``, already on this thread), psycopg's async cursor on
PostgreSQL.

It runs inside the session's transaction, so it commits and rolls back with the session's other
work. Like the session's autoflush, it first flushes ORM objects added or changed in the session
(``flush_pending``), so a statement sees, and may refer to, rows made earlier in the transaction.
What it does not do: refresh ORM objects already loaded in the session after a hot UPDATE. The
store's UPDATEs touch runs and outbox entries, which the hot paths hold as plain values; a caller
holding an ORM object of such a row refreshes it (``cancel_run`` does).
Driver errors come back as SQLAlchemy's exceptions (``IntegrityError`` and so on), as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]

# Observers of every hot statement's SQL (bench/pipeline.py counts them beside the engine's own).
observers: list[Callable[[str, int], None]] = []


@dataclass(frozen=True)
class _Bind:
    """One parameter of the compiled SQL: where its value comes from, and its processor."""

    key: str  # the bindparam's key, as callers pass it
    name: str  # its name in the compiled statement (differs for anonymous literals)
    required: bool
    value: Any  # the literal's value when not required
    process: Processor | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    binds: tuple[_Bind, ...]
    positional: bool  # qmark/format drivers take a tuple; the others a dict by (escaped) name
    escaped: Mapping[str, str]
    results: tuple[Processor | None, ...]
    driver_error: type[Exception]

    def args(self, params: Params) -> Any:
        """What SQLAlchemy's construct_params and bind processors make of ``params``, in one pass."""
        values = []
        for bind in self.binds:
            if bind.key in params:
                value = params[bind.key]
            elif bind.name in params:
                value = params[bind.name]
            elif bind.required:
                raise InvalidRequestError(f"A value is required for bind parameter {bind.key!r}")
            else:
                value = bind.value
            values.append(value if bind.process is None else bind.process(value))
        if self.positional:
            return tuple(values)
        return {self.escaped.get(bind.name, bind.name): value for bind, value in zip(self.binds, values, strict=True)}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(self.results, raw, strict=True))


def _binds(compiled: Any) -> tuple[_Bind, ...]:
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    order = compiled.positiontup if compiled.positional else list(by_name)
    processors = compiled._bind_processors
    binds = []
    for name in order:
        bind = by_name[name]
        if bind.callable is not None:
            raise ValueError("a hot statement cannot have bind parameters with callable values")
        binds.append(_Bind(key=bind.key, name=name, required=bind.required, value=bind.value,
                           process=processors.get(name)))
    return tuple(binds)


class Hot:
    """One prebuilt statement, run through the driver. Build it once, at import."""

    def __init__(self, statement: ClauseElement | Callable[[str], ClauseElement]) -> None:
        """``statement``, or a function of the dialect's name giving it (dialect-specific SQL)."""
        self._statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            statement = self._statement(dialect.name) if callable(self._statement) else self._statement
            compiled = statement.compile(dialect=dialect)
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise ValueError("a hot statement cannot have expanding (IN) or literal-execute parameters")
            results = tuple(entry.type._cached_result_processor(dialect, None)
                            for entry in getattr(compiled, "_result_columns", ()))
            plan = self._plans[dialect.name] = _Plan(
                sql=compiled.string, binds=_binds(compiled), positional=compiled.positional,
                escaped=dict(compiled.escaped_bind_names or {}), results=results,
                driver_error=dialect.loaded_dbapi.Error)
        return plan

    async def all(self, session: AsyncSession, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run it; every row it returns (none for a statement without RETURNING)."""
        return (await self._run(session, params))[0]

    async def rowcount(self, session: AsyncSession, params: Params | None = None) -> int:
        """Run it; how many rows it changed (an UPDATE or DELETE)."""
        return (await self._run(session, params))[1]

    async def _run(self, session: AsyncSession, params: Params | None) -> tuple[list[tuple[Any, ...]], int]:
        plan = self._plan(session.bind.dialect)
        args = plan.args(params or {})
        await flush_pending(session)
        for observe in observers:
            observe(plan.sql, 1)
        driver = await _driver(session)
        try:
            if isinstance(driver, _SQLite):
                cursor = driver.conn.execute(plan.sql, args)
                try:
                    raw, count = (cursor.fetchall() if cursor.description else []), cursor.rowcount
                finally:
                    cursor.close()
            else:
                async with driver.conn.cursor() as cursor:
                    await cursor.execute(plan.sql, args)
                    raw, count = (await cursor.fetchall() if cursor.description else []), cursor.rowcount
        except plan.driver_error as exc:
            raise _wrapped(plan, args, exc) from exc
        return [plan.row(r) for r in raw], count

    async def first(self, session: AsyncSession, params: Params | None = None) -> tuple[Any, ...] | None:
        rows = await self.all(session, params)
        return rows[0] if rows else None

    async def many(self, session: AsyncSession, rows: Iterable[Params]) -> None:
        """The statement once per parameter set, in one driver call (``executemany``)."""
        plan = self._plan(session.bind.dialect)
        batch = [plan.args(params) for params in rows]
        if not batch:
            return
        await flush_pending(session)
        for observe in observers:
            observe(plan.sql, len(batch))
        driver = await _driver(session)
        try:
            if isinstance(driver, _SQLite):
                driver.conn.executemany(plan.sql, batch).close()
            else:
                async with driver.conn.cursor() as cursor:
                    await cursor.executemany(plan.sql, batch)
        except plan.driver_error as exc:
            raise _wrapped(plan, batch, exc) from exc


def insert_all_columns(table: Table) -> Hot:
    """``INSERT INTO table (every column) VALUES (...)``: each execution gives every column's value
    (Python-side column defaults are not applied here)."""
    return Hot(insert(table).values({column.name: bindparam(column.name) for column in table.columns}))


def insert_once(table: Table, *, conflict_on: tuple[str, ...] = ()) -> Hot:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` of every column, in the session's dialect: a
    once-only insert in one statement (no row back: it existed)."""
    def build(dialect: str) -> ClauseElement:
        dialect_insert = sqlite_insert if dialect == "sqlite" else pg_insert
        return (dialect_insert(table).values({column.name: bindparam(column.name) for column in table.columns})
                .on_conflict_do_nothing(index_elements=list(conflict_on) or None).returning(table.c.id))
    return Hot(build)


async def flush_pending(session: AsyncSession) -> None:
    """Flush ORM objects added or changed in the session (unless autoflush is off), as the session
    does before a query. The check reads the session's own bookkeeping: ``session.dirty`` walks
    every object held, and a flush with nothing to do still costs tens of microseconds."""
    sync = session.sync_session
    if sync.autoflush and (sync._new or sync._deleted or sync.identity_map._modified):
        await session.flush()


@dataclass(frozen=True)
class _SQLite:
    conn: Any  # sqlite3.Connection


@dataclass(frozen=True)
class _Async:
    conn: Any  # psycopg.AsyncConnection


async def _driver(session: AsyncSession) -> _SQLite | _Async:
    """The driver connection of the session's innermost transaction (begun here if not yet),
    remembered while that transaction lasts: finding it through the session costs more than a
    statement. Asking the session for it is also what makes a ``begin_nested()`` emit its SAVEPOINT
    (SQLAlchemy does so lazily, when the savepoint's connection is first wanted): keyed by the
    innermost transaction, a hot statement inside a savepoint always asks first, so it rolls back
    with the savepoint."""
    sync = session.sync_session
    transaction = _innermost(sync)
    cached = session.info.get("hot_driver")
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cached[1]
    raw = await session.run_sync(_driver_connection)  # one hop into SQLAlchemy's greenlet, not two
    driver: _SQLite | _Async = _SQLite(raw._conn) if session.bind.dialect.name == "sqlite" else _Async(raw)
    session.info["hot_driver"] = (_innermost(sync), driver)
    return driver


def _innermost(sync: Session) -> Any:
    return sync.get_nested_transaction() or sync.get_transaction()


def _driver_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _wrapped(plan: _Plan, args: Any, exc: Exception) -> Exception:
    return DBAPIError.instance(plan.sql, args, exc, plan.driver_error)
