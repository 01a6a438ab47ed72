"""MCP tests: build_api() served by uvicorn on 127.0.0.1, real run workers, and the mcp SDK's own
client (streamable HTTP over an httpx2 client, then ClientSession) talking to it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from app.api import build_api
from app.api import mcp as mcp_api
from app.services.runtime import Runtime
from app.settings import Settings
from tests.conftest import bearer
from tests.fakes.serve import serve
from tests.runs.conftest import workers  # noqa: F401  (the real run workers fixture)

# Not the address the tests connect to (127.0.0.1): endpoint URLs and allowed Host/Origin values
# derive from it, and the localhost forms stay allowed for local use.
PUBLIC_URL = "https://mcp.example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, public_url=PUBLIC_URL)


@pytest.fixture
async def base(runtime: Runtime, workers: Any) -> AsyncIterator[str]:  # noqa: F811
    """The app over real HTTP, with the process's MCP session manager running, as in app.app's lifespan."""
    async with mcp_api.running(), serve(build_api()) as url:
        yield url


def endpoint(base: str, deployment_id: str) -> str:
    return f"{base}/v1/deployments/{deployment_id}/mcp"


async def create_mcp(api: httpx.AsyncClient, token: str, target_type: str, target_id: str) -> dict[str, Any]:
    response = await api.post("/v1/deployments", json={"target": {"type": target_type, "id": target_id},
                                                       "kind": "mcp"}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def admin_token_for(api: httpx.AsyncClient, token: str, subject: str) -> str:
    response = await api.post("/v1/tokens", json={"subject": subject}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@contextlib.asynccontextmanager
async def mcp_client(url: str, token: str, **headers: str) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session, authenticated with a bearer token of this project."""
    timeout = httpx2.Timeout(30.0, read=150.0)  # ask may wait for a run; httpx2's default read is 5 s
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **headers}, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def rpc(url: str, body: Any, *, token: str | None, headers: dict[str, str] | None = None,
              content: bytes | None = None) -> httpx.Response:
    """One raw JSON-RPC POST, for the HTTP-level checks the SDK client would never send."""
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
            "MCP-Protocol-Version": "2025-11-25"}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    async with httpx.AsyncClient(timeout=30.0) as client:
        if content is not None:
            return await client.post(url, content=content, headers=sent)
        return await client.post(url, json=body, headers=sent)
