"""Runs through the real API and workers with the built-in offline model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx

from app.services.background import default_model
from app.services.runtime import Runtime
from jobs.agent import AgentEnv
from jobs.llm import ModelError
from jobs.runner import RunWorkers
from models import Run
from models.types import utcnow
from tests.conftest import bearer
from tests.runs.conftest import make_smith, start_run, wait_run


async def test_run_completes_with_output_metadata_and_events(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # RUN-1, EV-1
    _, smith_id = await make_smith(api, admin_token)
    queued = await start_run(api, admin_token, smith_id, "hello there")
    assert queued["id"].startswith("run_")
    run = await wait_run(api, admin_token, queued["id"])
    assert run["status"] == "completed"
    assert run["output"] == {"text": "You said: hello there", "suggested_replies": []}
    assert run["input"] == [{"role": "user", "content": "hello there"}]
    assert run["metadata"]["thread_id"].startswith("thr_")
    assert run["metadata"]["sender"]["channel"] == "api"
    assert run["usage"]["model_calls"] == 1
    assert run["started_at"] and run["finished_at"]
    types = [e["type"] for e in (await api.get(f"/v1/runs/{run['id']}/events",
                                               headers=bearer(admin_token))).json()["data"]]
    assert types == ["run.queued", "run.started", "model.replied", "run.completed"]
    feed = (await api.get("/v1/events", params={"type": "message.completed"},
                          headers=bearer(admin_token))).json()["data"]
    assert feed[0]["data"]["text"] == "You said: hello there"
    assert feed[0]["run_id"] == run["id"]


async def test_chips_ride_the_output_and_the_event(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # CHIP-1, CHIP-5
    _, smith_id = await make_smith(api, admin_token)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "/chips Yes | No"))["id"])
    assert run["output"] == {"text": "Pick one:", "suggested_replies": ["Yes", "No"]}
    event = (await api.get("/v1/events", params={"type": "message.completed"},
                           headers=bearer(admin_token))).json()["data"][0]
    assert event["data"]["suggested_replies"] == ["Yes", "No"]


async def test_bad_chips_are_a_tool_error_not_a_stuck_run(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # CHIP-1
    _, smith_id = await make_smith(api, admin_token)
    run = await wait_run(api, admin_token,
                         (await start_run(api, admin_token, smith_id, "/chips " + "x" * 25))["id"])
    assert run["status"] == "completed"
    assert run["output"]["suggested_replies"] == []
    assert "1-19 characters" in run["output"]["text"]


async def test_memory_tools_persist_across_runs_in_a_thread(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:
    _, smith_id = await make_smith(api, admin_token)
    first = await wait_run(api, admin_token,
                           (await start_run(api, admin_token, smith_id, "/remember tone = warm"))["id"])
    assert first["output"]["text"] == "Remembered tone."
    memory = (await api.get(f"/v1/smiths/{smith_id}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("tone", "warm")]
    thread = first["metadata"]["thread_id"]
    second = await wait_run(api, admin_token,
                            (await start_run(api, admin_token, smith_id, "/recall tone", thread))["id"])
    assert second["metadata"]["thread_id"] == thread
    assert second["output"]["text"] == "tone = warm"


async def test_unknown_tool_is_refused_clearly(api: httpx.AsyncClient, admin_token: str,
                                               workers: RunWorkers) -> None:
    _, smith_id = await make_smith(api, admin_token)
    run = await wait_run(api, admin_token,
                         (await start_run(api, admin_token, smith_id, '/tool launch_rockets {"n": 3}'))["id"])
    assert run["status"] == "completed"
    assert "not available to this smith" in run["output"]["text"]
    malformed = await wait_run(api, admin_token,
                               (await start_run(api, admin_token, smith_id, "/tool memory_write {broken"))["id"])
    assert "not a JSON object" in malformed["output"]["text"]


async def test_list_runs_filters(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers) -> None:
    _, smith_a = await make_smith(api, admin_token)
    _, smith_b = await make_smith(api, admin_token)
    for smith in (smith_a, smith_a, smith_b):
        await wait_run(api, admin_token, (await start_run(api, admin_token, smith, "hi"))["id"])
    only_a = (await api.get("/v1/runs", params={"smith_id": smith_a}, headers=bearer(admin_token))).json()
    assert len(only_a["data"]) == 2 and all(r["smith_id"] == smith_a for r in only_a["data"])
    done = (await api.get("/v1/runs", params={"status": "completed", "source": "api", "limit": 2},
                          headers=bearer(admin_token))).json()
    assert len(done["data"]) == 2 and done["next_cursor"]
    bad = await api.get("/v1/runs", params={"status": "exploded"}, headers=bearer(admin_token))
    assert bad.status_code == 422


@contextlib.asynccontextmanager
async def workers_with_tools(runtime: Runtime, extra_tools: Any, count: int) -> AsyncIterator[None]:
    """Run workers whose agent hook for extra tools is ``extra_tools`` (to break the first step)."""
    async with httpx.AsyncClient() as http:
        def env_for(worker_id: str) -> AgentEnv:
            return AgentEnv(sessions=runtime.sessions, http=http, default_model=default_model(runtime),
                            worker_id=worker_id, lease_seconds=30, extra_tools=extra_tools)

        pool = RunWorkers(runtime.sessions, env_for, count=count, poll_interval_s=0.02, lease_seconds=30)
        task = asyncio.create_task(pool.run_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_run_whose_first_step_crashes_waits_like_an_expired_lease(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # the claim shares the first step's transaction: a crash there must not re-claim it in a loop
    _, smith_id = await make_smith(api, admin_token)
    queued = await start_run(api, admin_token, smith_id, "hello")
    crashes = 0
    crashed = asyncio.Event()

    async def broken_tools(session: Any, run: Any) -> list[Any]:
        nonlocal crashes
        crashes += 1
        crashed.set()
        raise RuntimeError("a bug in a hook")

    async with workers_with_tools(runtime, broken_tools, count=2):
        await asyncio.wait_for(crashed.wait(), 10)
        await asyncio.sleep(0.5)  # 25 polls of two workers: none may take the run again
    assert crashes == 1
    async with runtime.transaction() as session:
        run = await session.get(Run, queued["id"])
        assert run is not None and run.status == "running" and run.attempts == 1  # the claim stood
        assert run.lease_expires_at > utcnow() + timedelta(seconds=25)  # retried once the lease expires


async def test_a_model_error_in_the_first_step_fails_the_run_once(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # the failure is recorded on the claimed run, not lost with a rolled-back claim
    _, smith_id = await make_smith(api, admin_token)
    queued = await start_run(api, admin_token, smith_id, "hello")

    async def refusing_tools(session: Any, run: Any) -> list[Any]:
        raise ModelError("the model configuration is unusable", "model_config")

    async with workers_with_tools(runtime, refusing_tools, count=1):
        failed = await wait_run(api, admin_token, queued["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "model_config"
