"""Model-level conventions: ids and time columns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from models.types import UTCDateTime, new_id


def test_ids_are_monotonic_within_a_process() -> None:
    ids = [new_id("msg") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("msg_") and len(i) == 30 for i in ids[:10])


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)


def test_id_floor_orders_with_ids() -> None:
    from datetime import timedelta

    from models.types import id_floor, utcnow

    before = id_floor("evt", utcnow() - timedelta(seconds=1))
    made = new_id("evt")
    after = id_floor("evt", utcnow() + timedelta(seconds=1))
    assert before < made < after


def test_the_migrations_build_exactly_the_tables_the_code_declares(tmp_path: Path) -> None:
    # A model change without its migration (or the reverse) shows here, not on a user's database.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import models  # noqa: F401  (registers every table on SQLModel.metadata)
    from models.db import migrate

    migrate(f"sqlite+aiosqlite:///{tmp_path}/schema.db", tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path}/schema.db")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []
