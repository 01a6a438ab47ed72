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
