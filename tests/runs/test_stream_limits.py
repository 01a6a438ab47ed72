"""Streams (issue 13 §6): a revoked token's streams close, streams are capped per token and per
process (429 too_many_streams), and one poller per process serves every open stream."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from app.api import build_api
from app.services.runtime import Runtime
from app.services.streams import get_hub
from app.settings import Settings
from tests.conftest import bearer
from tests.runs.conftest import make_smith, start_run
from tests.runs.test_streams import StreamingASGITransport, sse_events

WAIT_S = 15.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, stream_recheck_seconds=0.2, streams_per_token=2, streams_per_process=3)


@pytest.fixture
async def streaming(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(build_api()), base_url="http://testserver",
                                 timeout=WAIT_S) as client:
        yield client


async def _smith_token(api: httpx.AsyncClient, admin_token: str, smith_id: str) -> dict[str, Any]:
    minted = await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))
    assert minted.status_code == 201, minted.text
    return dict(minted.json())


@pytest.mark.parametrize("which", ["feed", "run"])
async def test_a_revoked_tokens_stream_closes(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, which: str
) -> None:  # EV-1, API-2
    _, smith_id = await make_smith(api, admin_token)
    token = await _smith_token(api, admin_token, smith_id)
    run = await start_run(api, admin_token, smith_id, "hello")  # no workers: it stays queued
    path = "/v1/events/stream" if which == "feed" else f"/v1/runs/{run['id']}/stream"
    async with asyncio.timeout(WAIT_S), streaming.stream("GET", path, headers=bearer(token["token"])) as response:
        assert response.status_code == 200
        events = sse_events(response)
        if which == "run":
            assert (await anext(events)).event == "run.queued"
        await asyncio.sleep(0.3)
        revoked = await api.delete(f"/v1/tokens/{token['id']}", headers=bearer(admin_token))
        assert revoked.status_code == 200, revoked.text
        rest = [e async for e in events]  # ends only when the server closes the stream
    assert rest[-1].event == "stream.closed" and rest[-1].data == {"reason": "token_revoked"}


async def test_streams_are_capped_per_token_and_per_process(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str
) -> None:  # EV-1
    _, smith_id = await make_smith(api, admin_token)
    first, second = [await _smith_token(api, admin_token, smith_id) for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        async def open_stream(token: str) -> httpx.Response:
            return await stack.enter_async_context(streaming.stream("GET", "/v1/events/stream",
                                                                    headers=bearer(token)))

        assert (await open_stream(first["token"])).status_code == 200
        assert (await open_stream(first["token"])).status_code == 200
        refused = await streaming.get("/v1/events/stream", headers=bearer(first["token"]))
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_streams"
        assert (await open_stream(second["token"])).status_code == 200
        full = await streaming.get("/v1/events/stream", headers=bearer(admin_token))
        assert full.status_code == 429 and full.json()["error"]["code"] == "too_many_streams"
        assert get_hub().open_count == 3
    # Closing the streams gives their places back.
    await asyncio.sleep(0.1)
    assert get_hub().open_count == 0
    async with streaming.stream("GET", "/v1/events/stream", headers=bearer(first["token"])) as again:
        assert again.status_code == 200


async def test_one_poller_serves_every_stream(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # EV-1
    _, smith_id = await make_smith(api, admin_token)
    tokens = [await _smith_token(api, admin_token, smith_id) for _ in range(2)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM event" in statement or "FROM run_event" in statement:
            statements.append(statement)

    async with contextlib.AsyncExitStack() as stack:
        feeds = []
        for token in [tokens[0]["token"], tokens[0]["token"], tokens[1]["token"]]:
            response = await stack.enter_async_context(streaming.stream("GET", "/v1/events/stream",
                                                                        headers=bearer(token)))
            assert response.status_code == 200
            feeds.append(sse_events(response))
        polled = (runtime.read_engine or runtime.engine).sync_engine  # the poller reads outside transactions
        event.listen(polled, "before_cursor_execute", count)
        transactions = runtime.transactions
        try:
            await asyncio.sleep(2.0)
        finally:
            event.remove(polled, "before_cursor_execute", count)
        assert runtime.transactions == transactions  # polling takes no write transaction (SQLite's lock)
        # Three streams polling on their own made ~24 reads in 2 s (4 a second each); one poller ~8.
        assert 0 < len(statements) <= 10, len(statements)
        run = await start_run(api, admin_token, smith_id, "fan out")
        async with asyncio.timeout(WAIT_S):
            for feed in feeds:  # every stream gets the event the one poller read
                first = await anext(feed)
                assert (first.event, first.data["run_id"]) == ("run.queued", run["id"])
