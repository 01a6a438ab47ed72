"""Checks before work on the webhook receiver (issue 13 §2): a forged webhook is refused from the
channel cache, before any transaction (so it never queues for SQLite's write lock) and without
making the run workers give way; unknown tenant, unknown integration and a bad secret answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import httpx
from sqlalchemy import text

from app.services.channel_hub import get_hub
from app.services.runtime import Runtime
from jobs.waiting import inbound_in_flight
from models.db import sqlite_writer
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update
from tests.fakes.telegram import FakeTelegram, private_message


def _write_transactions(runtime: Runtime) -> tuple[int, int]:
    """Write transactions begun: through the runtime, and (SQLite) turns on the writer's lock."""
    writer = sqlite_writer(runtime.engine)
    return runtime.transactions, writer.transactions if writer is not None else 0


async def _watch_in_flight(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, int]:
    """Run the request while sampling, at every turn of the event loop, how many webhooks count as
    in flight for the background loops (jobs.waiting); the most seen."""
    task = asyncio.ensure_future(request)
    most = 0
    while not task.done():
        most = max(most, inbound_in_flight())
        await asyncio.sleep(0)
    return task.result(), most


async def test_forged_webhook_opens_no_transaction(api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram,
                                                   runtime: Runtime) -> None:
    await connect_bot(api, admin_token)
    for cache in ("cold", "warm"):
        if cache == "cold":
            get_hub(runtime).forget_tenants()
        before = _write_transactions(runtime)
        forged, most = await _watch_in_flight(post_update(api, tg, private_message("hi", update_id=7),
                                                          secret="forged"))
        assert forged.status_code == 401, forged.text
        assert _write_transactions(runtime) == before, cache
        assert most == 0, cache  # the workers did not give way to it

    # While another transaction holds the write lock, a forged request is still refused at once.
    async with runtime.transaction() as session:
        await session.execute(text("UPDATE project SET name = name"))
        async with asyncio.timeout(10):
            forged = await post_update(api, tg, private_message("hi", update_id=8), secret="forged")
        assert forged.status_code == 401

    # A genuine update is counted in flight and stored in its transaction (so the sampling above works).
    before = _write_transactions(runtime)
    genuine, most = await _watch_in_flight(post_update(api, tg, private_message("hi", update_id=9)))
    assert genuine.status_code == 200, genuine.text
    assert most >= 1
    assert _write_transactions(runtime)[0] > before[0]


async def test_unknown_tenant_integration_and_bad_secret_answer_alike(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram
) -> None:
    update = private_message("hi", update_id=3)
    headers = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
    answers: dict[str, httpx.Response] = {
        "unknown integration": await api.post("/v1/telegram/webhook/default", json=update, headers=headers),
        "unknown tenant": await api.post("/v1/telegram/webhook/nobody", json=update, headers=headers),
    }
    await connect_bot(api, admin_token)
    answers["bad secret"] = await api.post("/v1/telegram/webhook/default", json=update, headers=headers)
    answers["no secret"] = await api.post("/v1/telegram/webhook/default", json=update)
    answers["unknown tenant, connected"] = await api.post("/v1/telegram/webhook/nobody", json=update, headers=headers)
    shapes: dict[tuple[int, str], list[str]] = {}
    for name, response in answers.items():
        shapes.setdefault((response.status_code, response.text), []).append(name)
    assert len(shapes) == 1, shapes
    (status, body), = shapes
    assert status == 401
    error: dict[str, Any] = httpx.Response(200, content=body).json()["error"]
    assert error["code"] == "invalid_signature"
    assert (await api.get("/v1/agents", headers=bearer(admin_token))).status_code == 200
