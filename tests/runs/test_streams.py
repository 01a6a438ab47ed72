"""Server-Sent Events: a run's events as they happen, and the project's feed (EV-1, RUN-1).

httpx's ``ASGITransport`` collects the whole body before it answers, which never happens for the
project feed; ``StreamingASGITransport`` below hands each chunk over as the app sends it and tells
the app the client left when the response is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.api import build_api
from app.services.runtime import Runtime
from jobs.runner import RunWorkers
from tests.conftest import bearer
from tests.runs.conftest import make_smith, start_run, wait_run

WAIT_S = 20.0


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.chunks = chunks
        self.gone = gone
        self.task = task
        self.closed_cleanly: bool | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.gone.set()  # the app's receive() now answers http.disconnect
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 5)
            self.closed_cleanly = True
        except TimeoutError:
            self.closed_cleanly = False
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in-process and streams its response body chunk by chunk."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[_Body] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.url.scheme, "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (request.url.host, request.url.port or 80), "client": ("127.0.0.1", 50000),
        }
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await chunks.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                await chunks.put(None)

        task = asyncio.create_task(run())
        start = await started
        self.bodies.append(_Body(chunks, gone, task))
        return httpx.Response(start["status"], headers=start.get("headers", []), stream=self.bodies[-1],
                              request=request)


@dataclass
class SSE:
    event: str = "message"
    id: str = ""
    data_lines: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        return json.loads("\n".join(self.data_lines))


async def sse_events(response: httpx.Response) -> AsyncIterator[SSE]:
    """Parse the text/event-stream format by hand: ``event:``, ``id:``, ``data:`` lines, a blank
    line ends an event, lines starting with ``:`` are comments (keep-alive pings)."""
    current = SSE()
    seen = False
    async for line in response.aiter_lines():
        if line == "":
            if seen:
                yield current
            current, seen = SSE(), False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            current.event, seen = value, True
        elif name == "id":
            current.id, seen = value, True
        elif name == "data":
            current.data_lines.append(value)
            seen = True
    if seen:
        yield current


@pytest.fixture
async def streaming(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(build_api()), base_url="http://testserver",
                                 timeout=WAIT_S) as client:
        yield client


async def test_run_stream_follows_the_run_and_ends_by_itself(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # EV-1, RUN-1
    _, smith_id = await make_smith(api, admin_token, approval_required_tools=["memory_write"])
    run = await start_run(api, admin_token, smith_id, "/remember plan = launch")
    seen: list[SSE] = []
    async with asyncio.timeout(WAIT_S), streaming.stream(
        "GET", f"/v1/runs/{run['id']}/stream", headers=bearer(admin_token)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in sse_events(response):
            seen.append(event)
            if event.event == "run.awaiting_approval":
                # The stream is still open while the run waits; deciding resumes it.
                decided = await api.post(f"/v1/runs/{run['id']}/submit", json={"decision": "approve"},
                                         headers=bearer(admin_token))
                assert decided.status_code == 200, decided.text
        # The loop ended because the server closed the stream once the run finished.
    types = [e.event for e in seen]
    assert types == ["run.queued", "run.started", "model.replied", "run.awaiting_approval", "run.queued",
                     "run.resumed", "tool.result", "model.replied", "run.completed"]
    assert [int(e.id) for e in seen] == list(range(1, len(seen) + 1))
    for event in seen:
        assert event.data["seq"] == int(event.id)
        assert event.data["type"] == event.event
    assert seen[-1].data["data"]["status"] == "completed"
    assert seen[6].data["data"]["result"] == "Remembered plan."


async def test_run_stream_resumes_after_a_seq(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # EV-1
    _, smith_id = await make_smith(api, admin_token)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hello"))["id"])
    assert run["status"] == "completed"
    async with asyncio.timeout(WAIT_S), streaming.stream(
        "GET", f"/v1/runs/{run['id']}/stream", params={"after": 2}, headers=bearer(admin_token)
    ) as response:
        assert response.status_code == 200
        resumed = [e async for e in sse_events(response)]
    assert [(e.id, e.event) for e in resumed] == [("3", "model.replied"), ("4", "run.completed")]
    async with asyncio.timeout(WAIT_S), streaming.stream(
        "GET", f"/v1/runs/{run['id']}/stream", params={"after": 4}, headers=bearer(admin_token)
    ) as response:
        assert [e async for e in sse_events(response)] == []  # nothing after the last: ends at once


async def test_run_stream_refuses_before_it_opens(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str
) -> None:  # RUN-1, EV-1
    agent_id, smith_id = await make_smith(api, admin_token)
    run = await start_run(api, admin_token, smith_id, "hello")
    other = (await api.post("/v1/smiths", json={"agent_id": agent_id, "name": "Other"},
                            headers=bearer(admin_token))).json()
    stranger = (await api.post(f"/v1/smiths/{other['id']}/tokens", json={},
                               headers=bearer(admin_token))).json()["token"]
    own = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    async with asyncio.timeout(WAIT_S):
        unknown = await streaming.get("/v1/runs/run_00000000000000000000000000/stream",
                                      headers=bearer(admin_token))
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/json")
        assert unknown.json()["error"]["code"] == "run_not_found"
        forbidden = await streaming.get(f"/v1/runs/{run['id']}/stream", headers=bearer(stranger))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "wrong_smith"
        unauthenticated = await streaming.get(f"/v1/runs/{run['id']}/stream")
        assert unauthenticated.status_code == 401
        # The smith's own token may watch (no workers here: the run stays queued, so close it ourselves).
        async with streaming.stream("GET", f"/v1/runs/{run['id']}/stream", headers=bearer(own)) as response:
            assert response.status_code == 200
            first = await anext(aiter(sse_events(response)))
            assert (first.id, first.event) == ("1", "run.queued")


async def test_project_stream_delivers_new_events_only(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # EV-1, RUN-1
    _, smith_id = await make_smith(api, admin_token)
    before = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "earlier"))["id"])
    types: list[str] = []
    async with asyncio.timeout(WAIT_S), streaming.stream(
        "GET", "/v1/events/stream", headers=bearer(admin_token)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        # The stream has no past: wait until it is polling, then start the run it must report.
        await asyncio.sleep(0.3)
        run = await start_run(api, admin_token, smith_id, "news")
        async for event in events:
            assert event.data["run_id"] != before["id"]  # nothing from before the stream opened
            assert event.id == event.data["id"]
            types.append(event.event)
            if event.event == "message.completed" and event.data["run_id"] == run["id"]:
                assert event.data["data"]["text"] == "You said: news"
                break
        await events.aclose()
    # Leaving the block closed the response: the app saw the disconnect and ended on its own.
    transport = streaming._transport
    assert isinstance(transport, StreamingASGITransport)
    assert transport.bodies[-1].closed_cleanly is True
    assert types[0] == "run.queued"
    assert types[-2:] == ["run.completed", "message.completed"]  # the reply is announced after the run ends


async def test_project_stream_filters_by_type(
    api: httpx.AsyncClient, streaming: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # EV-1
    _, smith_id = await make_smith(api, admin_token)
    async with asyncio.timeout(WAIT_S), streaming.stream(
        "GET", "/v1/events/stream", params={"type": "message.completed"}, headers=bearer(admin_token)
    ) as response:
        events = sse_events(response)
        await asyncio.sleep(0.3)
        run = await start_run(api, admin_token, smith_id, "only the reply")
        first = await anext(events)
        await events.aclose()
    assert first.event == "message.completed"
    assert first.data["run_id"] == run["id"]
