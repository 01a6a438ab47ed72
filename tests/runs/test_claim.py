"""The claim (jobs/queue.py) hands the loop the run row as plain values (models/store/runs.py)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import inspect

from app.services.runtime import Runtime
from jobs.queue import claim_run
from models import Run
from tests.runs.conftest import make_smith, start_run


async def test_the_claimed_run_is_the_stored_row_as_plain_values(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # RUN-1: a queued run is claimed once, with its lease
    _, smith_id = await make_smith(api, admin_token)
    started = await start_run(api, admin_token, smith_id, "hello")
    async with runtime.transaction() as session:
        claimed = await claim_run(session, worker_id="w1", lease_seconds=30)
        assert claimed is not None and claimed.id == started["id"]
        with pytest.raises(dataclasses.FrozenInstanceError):  # a value: only the store writes runs
            claimed.usage = {"model_calls": 99}  # type: ignore[misc]
        assert await claim_run(session, worker_id="w2", lease_seconds=30) is None  # claimed once
    async with runtime.transaction() as session:
        stored = await session.get(Run, started["id"])
        assert stored is not None
        columns = [attr.key for attr in inspect(Run).column_attrs]
        assert {key: getattr(claimed, key) for key in columns} == {key: getattr(stored, key) for key in columns}
    assert stored.status == "running" and stored.lease_owner == "w1" and stored.attempts == 1
    assert stored.started_at is not None and stored.started_at.tzinfo is not None
    assert stored.usage == {}
    assert stored.input == [{"role": "user", "content": "hello"}]
