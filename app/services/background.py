"""Background work of one server process: run workers now; the scheduler and outbox as they land.

Started from the app's lifespan (after migrations) and by tests; nothing starts at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from app.services.runtime import Runtime
from jobs.agent import AgentEnv
from jobs.llm import ModelConfig
from jobs.runner import RunWorkers


def default_model(runtime: Runtime) -> ModelConfig:
    s = runtime.settings
    return ModelConfig(provider=s.model_provider or "builtin", name=s.model, base_url=s.model_base_url,
                       api_key=s.model_api_key)


@contextlib.asynccontextmanager
async def background(runtime: Runtime, *, workers: int | None = None, poll_interval_s: float | None = None,
                     lease_seconds: float | None = None) -> AsyncIterator[RunWorkers]:
    count = runtime.settings.workers if workers is None else workers
    lease = lease_seconds or runtime.settings.run_lease_seconds
    poll = poll_interval_s or runtime.settings.run_poll_seconds
    async with httpx.AsyncClient(timeout=60.0) as http:
        def env_for(worker_id: str) -> AgentEnv:
            return AgentEnv(sessions=runtime.sessions, http=http, default_model=default_model(runtime),
                            worker_id=worker_id, lease_seconds=lease)

        pool = RunWorkers(runtime.sessions, env_for, count=count, poll_interval_s=poll, lease_seconds=lease)
        task = asyncio.create_task(pool.run_forever(), name="run-workers")
        try:
            yield pool
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
