"""Hot statements (models/store/hot.py) write and read exactly what the session would, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from app.services.actors import Actor
from app.services.runtime import Runtime
from models import InboundDelivery, RunEvent
from models.store.hot import Hot, insert_all_columns, insert_once
from models.types import new_id

_DELIVERY = InboundDelivery.__table__
_INSERT_DELIVERY = insert_all_columns(_DELIVERY)
_ONCE = insert_once(_DELIVERY)
_BY_PROJECT = Hot(select(InboundDelivery.id, InboundDelivery.payload, InboundDelivery.received_at,
                         InboundDelivery.run_id)
                  .where(InboundDelivery.project_id == bindparam("project_id"), InboundDelivery.kind == "telegram")
                  .order_by(InboundDelivery.id))
_SET_RUN = Hot(update(_DELIVERY).where(_DELIVERY.c.kind == bindparam("kind")).values(run_id=bindparam("run_id")))


def _delivery(project_id: str, key: str, **overrides: object) -> dict[str, object]:
    return {"id": new_id("inb"), "project_id": project_id, "integration_id": "int_x", "kind": "telegram",
            "dedupe_key": key, "payload": {"text": "héllo", "n": [1, 2]}, "run_id": None,
            "received_at": datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
            **overrides}


async def test_rows_round_trip_like_the_orm(runtime: Runtime, admin: Actor) -> None:
    project_id = admin.project_id
    async with runtime.transaction() as session:
        await _INSERT_DELIVERY.many(session, [_delivery(project_id, "a"), _delivery(project_id, "b")])
        assert await _SET_RUN.rowcount(session, {"kind": "telegram", "run_id": "run_y"}) == 2
        hot_rows = await _BY_PROJECT.all(session, {"project_id": project_id})

    async with runtime.transaction() as session:
        orm_rows = (await session.execute(select(InboundDelivery).where(InboundDelivery.project_id == project_id)
                                          .order_by(InboundDelivery.id))).scalars().all()
    assert [(r.id, r.payload, r.received_at, r.run_id) for r in orm_rows] == hot_rows
    assert hot_rows[0][1] == {"text": "héllo", "n": [1, 2]}
    assert hot_rows[0][2] == datetime(2026, 3, 28, 23, 30, 15, 123456, tzinfo=UTC)  # stored as UTC, comes back aware
    assert hot_rows[0][2].tzinfo is not None
    assert hot_rows[1][3] == "run_y"


async def test_insert_once_returns_nothing_for_a_duplicate_and_keeps_the_first(runtime: Runtime, admin: Actor) -> None:
    project_id = admin.project_id
    async with runtime.transaction() as session:
        first = _delivery(project_id, "dup")
        assert await _ONCE.all(session, first) == [(first["id"],)]
        assert await _ONCE.all(session, _delivery(project_id, "dup", payload={"second": True})) == []
        rows = await _BY_PROJECT.all(session, {"project_id": project_id})
    assert [row[0] for row in rows] == [first["id"]]


async def test_driver_errors_are_sqlalchemy_errors_and_roll_back(runtime: Runtime, admin: Actor) -> None:
    project_id = admin.project_id
    with pytest.raises(IntegrityError):
        async with runtime.transaction() as session:
            await _INSERT_DELIVERY.all(session, _delivery(project_id, "kept?"))
            await _INSERT_DELIVERY.all(session, _delivery(project_id, "kept?"))  # the unique dedupe key
    async with runtime.transaction() as session:
        assert await _BY_PROJECT.all(session, {"project_id": project_id}) == []  # nothing half-written


async def test_a_savepoint_rolls_back_the_hot_statements_run_inside_it(runtime: Runtime, admin: Actor) -> None:
    # SQLAlchemy emits a savepoint's SAVEPOINT only when the session is asked for its connection:
    # a hot statement must ask, or its row would survive the savepoint's rollback (a failed tool's
    # outbox entry would be sent, a failed step's events kept).
    project_id = admin.project_id
    async with runtime.transaction() as session:
        await _INSERT_DELIVERY.all(session, _delivery(project_id, "before"))
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await _INSERT_DELIVERY.all(session, _delivery(project_id, "inside"))
                raise RuntimeError("the step failed")
        async with session.begin_nested():
            await _INSERT_DELIVERY.all(session, _delivery(project_id, "kept"))
        await _INSERT_DELIVERY.all(session, _delivery(project_id, "after"))
    async with runtime.transaction() as session:
        rows = (await session.execute(select(InboundDelivery.dedupe_key).where(
            InboundDelivery.project_id == project_id).order_by(InboundDelivery.id))).scalars().all()
    assert rows == ["before", "kept", "after"]


async def test_a_missing_parameter_is_refused_before_the_database(runtime: Runtime, admin: Actor) -> None:
    project_id = admin.project_id
    row = _delivery(project_id, "x")
    del row["run_id"]
    async with runtime.transaction() as session:
        with pytest.raises(InvalidRequestError, match="run_id"):
            await _INSERT_DELIVERY.all(session, row)


async def test_pending_orm_objects_are_flushed_first_as_by_autoflush(runtime: Runtime, admin: Actor) -> None:
    project_id = admin.project_id
    async with runtime.transaction() as session:
        session.add(InboundDelivery(**_delivery(project_id, "orm")))
        with session.no_autoflush:  # the session's own switch holds for hot statements too
            assert await _BY_PROJECT.all(session, {"project_id": project_id}) == []
        rows = await _BY_PROJECT.all(session, {"project_id": project_id})  # no flush by hand
    assert len(rows) == 1


def test_expanding_parameters_are_refused() -> None:
    statement = Hot(select(RunEvent.id).where(RunEvent.run_id.in_(["a", "b"])))
    from sqlalchemy.dialects import sqlite

    with pytest.raises(ValueError, match="expanding"):
        statement._plan(sqlite.dialect())

