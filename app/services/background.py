"""Background work of one server process: run workers, the outbox deliverer, bot long polling
(leader only) and, as it lands, the scheduler (leader only).

Started from the app's lifespan (after migrations) and by tests; nothing starts at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from app.services.channel_hub import get_hub
from app.services.conversations import Conversations
from app.services.memory import memory_limits
from app.services.polling import poll_forever
from app.services.runtime import Runtime
from app.services.schedule_firing import run_scheduler
from jobs import textfold
from jobs.agent import AgentEnv
from jobs.delivery import Deliverer
from jobs.llm import ModelConfig
from jobs.run_signals import listen_forever
from jobs.runner import RunWorkers


def default_model(runtime: Runtime) -> ModelConfig:
    s = runtime.settings
    return ModelConfig(provider=s.model_provider or "builtin", name=s.model, base_url=s.model_base_url,
                       api_key=s.model_api_key)


@contextlib.asynccontextmanager
async def background(runtime: Runtime, *, workers: int | None = None, poll_interval_s: float | None = None,
                     lease_seconds: float | None = None, delivery: bool = True,
                     polling: bool = True, scheduler: bool = True) -> AsyncIterator[RunWorkers]:
    count = runtime.settings.workers if workers is None else workers
    lease = lease_seconds or runtime.settings.run_lease_seconds
    poll = poll_interval_s or runtime.settings.run_poll_seconds
    hub = get_hub(runtime)
    conversations = Conversations(hub)
    async with httpx.AsyncClient(timeout=60.0) as http:
        def env_for(worker_id: str) -> AgentEnv:
            return AgentEnv(sessions=runtime.sessions, http=http, default_model=default_model(runtime),
                            worker_id=worker_id, lease_seconds=lease, extra_tools=conversations.extra_tools,
                            secrets=runtime.secrets, allow_private_urls=runtime.settings.allow_private_urls,
                            memory_limits=memory_limits(runtime.settings),
                            on_reply=conversations.on_reply, on_approval=conversations.on_approval)

        pool = RunWorkers(runtime.sessions, env_for, count=count, poll_interval_s=poll, lease_seconds=lease)
        tasks = [asyncio.create_task(pool.run_forever(), name="run-workers"),
                 # The forgery check's Unicode tables (~0.3 s), built now rather than inside the
                 # first webhook's transaction that holds a non-ASCII line.
                 asyncio.create_task(asyncio.to_thread(textfold.prepare), name="textfold-tables")]
        if delivery:
            # Sends wake it when their enqueue commits (jobs.commit_hooks); the poll only finds retries that
            # came due.
            deliverer = Deliverer(runtime.sessions, hub.for_project, poll_interval_s=max(poll, 1.0),
                                  send_lease=timedelta(seconds=runtime.settings.send_lease_seconds))
            tasks.append(asyncio.create_task(deliverer.run_forever(), name="outbox"))
        if polling:
            tasks.append(asyncio.create_task(poll_forever(runtime), name="pull-receivers"))
        # PostgreSQL: runs changed or queued by other processes wake this process's waiters and idle
        # workers (jobs.run_signals).
        tasks.append(asyncio.create_task(listen_forever(runtime.engine), name="run-signals"))
        if scheduler:  # every process competes; only the lock holder fires (jobs.leader)
            tasks.append(asyncio.create_task(run_scheduler(runtime.engine, runtime.sessions, runtime.settings.data_dir),
                                             name="scheduler"))
        try:
            yield pool
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.aclose()
