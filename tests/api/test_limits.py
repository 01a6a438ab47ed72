"""Limits before work (issue 13 §2): bodies are sized before they are read, and refused clients are
throttled. The app is stacked the way Reflex stacks our ``api_transformer`` list (app/app.py): the
webhook front with FastAPI mounted under it, the guard around both."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from app.api import build_api, limits, webhooks
from app.settings import Settings
from tests.conftest import bearer

MB = 1_000_000


def served() -> object:
    """What Reflex builds from ``[build_api(), webhooks.front(), limits.guard]`` (minus Reflex's pages)."""
    front = webhooks.front()
    front.mount("", build_api())
    return limits.guard(front)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, refusal_limit=4, refusal_window_seconds=60)


@pytest.fixture
async def stack(runtime: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class Body:
    """A request body that yields ``total`` bytes of a JSON string in chunks and records how much
    of it the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.consumed = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        yield b'{"name": "'
        while sent < self.total:
            piece = b"x" * min(self.chunk, self.total - sent)
            sent += len(piece)
            self.consumed = sent
            yield piece
        yield b'"}'


async def test_declared_50mb_body_is_refused_unread(stack: httpx.AsyncClient, admin_token: str) -> None:
    body = Body(50 * MB)
    response = await stack.post("/v1/agents", content=body,
                                headers={**bearer(admin_token), "Content-Length": str(50 * MB + 12),
                                         "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert body.consumed == 0  # not one chunk was read


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/telegram/webhook/default"])
async def test_chunked_body_is_cut_off_at_the_limit(stack: httpx.AsyncClient, admin_token: str, path: str) -> None:
    body = Body(5 * MB)  # no Content-Length: httpx streams it chunked
    response = await stack.post(path, content=body, headers={**bearer(admin_token), "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert MB <= body.consumed <= MB + body.chunk  # read up to the limit, not further


async def test_small_bodies_pass(stack: httpx.AsyncClient, admin_token: str) -> None:
    created = await stack.post("/v1/agents", json={"name": "fine"}, headers=bearer(admin_token))
    assert created.status_code == 201, created.text


async def test_limits_are_settings(runtime: object, settings: Settings, admin_token: str) -> None:
    from app.services.runtime import get_runtime
    rt = get_runtime()
    rt.settings = dataclasses.replace(settings, max_api_bytes=100)
    transport = httpx.ASGITransport(app=served())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        big = await client.post("/v1/agents", json={"name": "x" * 200}, headers=bearer(admin_token))
        assert big.status_code == 413
        small = await client.post("/v1/agents", json={"name": "x"}, headers=bearer(admin_token))
        assert small.status_code == 201


async def test_refusals_are_throttled_with_one_log_line(stack: httpx.AsyncClient, admin_token: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ingram.limits")
    statuses = [(await stack.get("/v1/agents")).status_code for _ in range(4)]
    assert statuses == [401] * 4
    for _ in range(5):
        throttled = await stack.get("/v1/agents", headers=bearer(admin_token))  # even a good token now waits
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "rate_limited"
        assert int(throttled.headers["retry-after"]) > 0
    lines = [r for r in caplog.records if r.name == "ingram.limits"]
    assert len(lines) == 1
    other = httpx.ASGITransport(app=stack._transport.app, client=("10.0.0.9", 5000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as client:
        assert (await client.get("/v1/agents", headers=bearer(admin_token))).status_code == 200


def test_websockets_pass_through() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = limits.guard(Starlette(routes=[WebSocketRoute("/_event", echo)]))
    with TestClient(app) as client, client.websocket_connect("/_event") as ws:  # type: ignore[arg-type]
        ws.send_text("x" * (2 * MB))  # websocket frames are Reflex's business, not a request body
        assert len(ws.receive_text()) == 2 * MB


async def test_behind_the_proxy_each_forwarded_client_has_its_own_budget(stack: httpx.AsyncClient,
                                                                         admin_token: str) -> None:
    def via_proxy(client: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"203.0.113.50, {client}"}  # the first hop is the client's to forge

    for _ in range(4):
        assert (await stack.get("/v1/agents", headers=via_proxy("198.51.100.7"))).status_code == 401
    assert (await stack.get("/v1/agents", headers=via_proxy("198.51.100.7"))).status_code == 429
    other = await stack.get("/v1/agents", headers={**bearer(admin_token), **via_proxy("198.51.100.8")})
    assert other.status_code == 200  # the proxy's other clients are not throttled
    # A peer that is not a trusted proxy cannot pick its address.
    direct = httpx.ASGITransport(app=stack._transport.app, client=("10.0.0.9", 5000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=direct, base_url="http://testserver") as client:
        for n in range(4):
            assert (await client.get("/v1/agents", headers={"X-Forwarded-For": f"192.0.2.{n}"})).status_code == 401
        assert (await client.get("/v1/agents", headers={"X-Forwarded-For": "192.0.2.99"})).status_code == 429


@pytest.mark.parametrize(("peer", "proto", "scheme"), [
    ("127.0.0.1", "https", "https"),  # the TLS proxy in front: its scheme is the request's
    ("127.0.0.1", "gopher", "http"),  # not a scheme it could mean
    ("203.0.113.9", "https", "http"),  # anyone else's header is theirs to forge
])
async def test_a_trusted_proxys_scheme_is_the_requests(runtime: object, peer: str, proto: str, scheme: str) -> None:
    async def page(request: object) -> PlainTextResponse:
        return PlainTextResponse("page")

    app = limits.guard(Starlette(routes=[Route("/setup/", page)]))  # Starlette redirects /setup to /setup/
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://ingram.example.com") as client:
        answer = await client.get("/setup", headers={"x-forwarded-proto": proto})
    assert answer.status_code == 307
    assert answer.headers["location"] == f"{scheme}://ingram.example.com/setup/"
