"""app.services.mcp without HTTP: the ask timeout, memory URIs and the console's client configurations."""

from __future__ import annotations

import json

import httpx
import pytest

from app.services import mcp as service
from app.services.actors import Actor
from app.services.memory import put_memory
from app.services.runtime import Runtime
from tests.mcp.conftest import create_mcp
from tests.runs.conftest import make_smith


async def test_ask_without_workers_times_out_with_the_run_id(api: httpx.AsyncClient, admin_token: str,
                                                             runtime: Runtime, admin: Actor) -> None:  # MCP-2
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    result = await service.ask(runtime.sessions, actor=admin, deployment_id=deployment["id"], message="hello",
                               timeout_s=0.2)
    assert result.timed_out and result.is_error and result.status == "queued"
    assert result.run_id in result.text() and result.structured()["run_id"] == result.run_id
    runs = (await api.get("/v1/runs", params={"source": "mcp"},
                          headers={"Authorization": f"Bearer {admin_token}"})).json()["data"]
    assert [r["id"] for r in runs] == [result.run_id]  # the run stays queued for a worker


async def test_memory_keys_round_trip_through_uris(api: httpx.AsyncClient, admin_token: str, runtime: Runtime,
                                                   admin: Actor) -> None:  # MCP-2
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    async with runtime.transaction() as session:
        for key in ("notes/today", "a:b", "Color"):
            await put_memory(session, actor=admin, smith_id=smith_id, key=key, value=f"v-{key}")
    async with runtime.transaction() as session:
        entries, cursor = await service.list_memory_resources(session, actor=admin, deployment_id=deployment["id"])
        uris = [service.memory_uri(e.key) for e in entries]
        # ":" is escaped so the key is not read as host:port; "/" and case are kept. (Order is the database's.)
        assert sorted(uris) == ["memory://Color", "memory://a%3Ab", "memory://notes/today"] and cursor is None
        for uri in uris:
            entry = await service.read_memory_resource(session, actor=admin, deployment_id=deployment["id"], uri=uri)
            assert entry.value == f"v-{service.key_of_uri(uri)}"


def test_client_configurations_carry_the_url_and_a_token_placeholder() -> None:  # MCP-1
    url = "https://mcp.example.com/v1/deployments/dep_x/mcp"
    generic = json.loads(service.client_config(url, "Dana's Smith"))
    assert generic == {"mcpServers": {"ingram-dana-s-smith": {
        "type": "http", "url": url, "headers": {"Authorization": "Bearer <YOUR_TOKEN>"}}}}
    desktop = json.loads(service.desktop_config(url, "Dana's Smith"))["mcpServers"]["ingram-dana-s-smith"]
    assert desktop["command"] == "npx" and url in desktop["args"]
    assert desktop["env"] == {"AUTH_HEADER": "Bearer <YOUR_TOKEN>"}
    assert service.server_key("!!!") == "ingram"


async def test_resources_list_pages_by_key(api: httpx.AsyncClient, admin_token: str, runtime: Runtime, admin: Actor,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # MCP-2
    monkeypatch.setattr(service, "RESOURCE_PAGE", 2)
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    async with runtime.transaction() as session:
        for key in ("k1", "k2", "k3", "k4", "k5"):
            await put_memory(session, actor=admin, smith_id=smith_id, key=key, value=key)
    seen, cursor = [], None
    async with runtime.transaction() as session:
        while True:
            entries, cursor = await service.list_memory_resources(session, actor=admin,
                                                                  deployment_id=deployment["id"], cursor=cursor)
            seen.append([e.key for e in entries])
            if cursor is None:
                break
    assert seen == [["k1", "k2"], ["k3", "k4"], ["k5"]]
