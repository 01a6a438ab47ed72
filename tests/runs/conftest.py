"""Run tests: the API in-process plus real run workers in the same event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.services.background import background
from app.services.runtime import Runtime
from jobs.runner import RunWorkers
from tests.conftest import bearer

FINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
async def workers(runtime: Runtime) -> AsyncIterator[RunWorkers]:
    # The scheduler and bot polling have their own tests; runs need only workers and the outbox.
    async with background(runtime, workers=2, poll_interval_s=0.05, lease_seconds=30, polling=False,
                          scheduler=False) as pool:
        yield pool


async def make_smith(api: httpx.AsyncClient, token: str, **agent: Any) -> tuple[str, str]:
    created = await api.post("/v1/agents", json={"name": "Agent", **agent}, headers=bearer(token))
    assert created.status_code == 201, created.text
    smith = await api.post("/v1/smiths", json={"agent_id": created.json()["id"], "name": "Smith"},
                           headers=bearer(token))
    assert smith.status_code == 201, smith.text
    return created.json()["id"], smith.json()["id"]


async def start_run(api: httpx.AsyncClient, token: str, smith_id: str, text: str,
                    thread_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"input": [{"role": "user", "content": text}]}
    if thread_id:
        body["thread_id"] = thread_id
    response = await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(token))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()


async def wait_run(api: httpx.AsyncClient, token: str, run_id: str,
                   until: set[str] | frozenset[str] = frozenset(FINAL), wait_s: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        run = (await api.get(f"/v1/runs/{run_id}", headers=bearer(token))).json()
        if run["status"] in until:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} stuck in {run['status']}: {run}")
        await asyncio.sleep(0.05)
