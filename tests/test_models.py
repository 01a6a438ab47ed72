"""Model-level conventions: ids and time columns."""

from __future__ import annotations

from datetime import datetime

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
