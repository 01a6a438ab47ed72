"""MCP server deployments through the SDK's own client: the ask tool, memory resources, targets."""

from __future__ import annotations

import asyncio
import time

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.services.actors import Actor
from app.services.runs import list_run_messages
from app.services.runtime import Runtime
from tests.conftest import bearer
from tests.mcp.conftest import PUBLIC_URL, admin_token_for, create_mcp, endpoint, mcp_client
from tests.runs.conftest import make_smith, wait_run


async def test_create_answers_201_with_the_endpoint(api: httpx.AsyncClient, admin_token: str) -> None:  # MCP-1
    agent_id, smith_id = await make_smith(api, admin_token)
    created = await create_mcp(api, admin_token, "smith", smith_id)  # no integration to connect first
    assert created["kind"] == "mcp" and created["status"] == "active"
    assert created["id"].startswith("dep_") and created["bound_at"]
    assert created["endpoint_url"] == f"{PUBLIC_URL}/v1/deployments/{created['id']}/mcp"
    catch_all = await create_mcp(api, admin_token, "agent", agent_id)
    assert catch_all["status"] == "active"
    again = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent_id}, "kind": "mcp"},
                           headers=bearer(admin_token))
    assert again.status_code == 409 and again.json()["error"]["code"] == "catch_all_exists"  # DEP-5
    setup = await api.post("/v1/deployments", json={"target": {"type": "smith", "id": smith_id}, "kind": "mcp",
                                                    "setup": {"mode": "start_token"}}, headers=bearer(admin_token))
    assert setup.status_code == 422 and setup.json()["error"]["code"] == "invalid_setup"
    listed = (await api.get("/v1/deployments", params={"kind": "mcp"}, headers=bearer(admin_token))).json()
    assert {d["id"] for d in listed["data"]} == {created["id"], catch_all["id"]}
    shown = (await api.get(f"/v1/deployments/{created['id']}", headers=bearer(admin_token))).json()
    assert shown["endpoint_url"] == created["endpoint_url"]


async def test_sdk_session_ask_twice_and_read_memory(api: httpx.AsyncClient, admin_token: str, base: str,
                                                    runtime: Runtime, admin: Actor) -> None:  # MCP-1, MCP-2
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    async with mcp_client(endpoint(base, deployment["id"]), admin_token) as session:
        assert session.initialize_result is not None
        assert session.initialize_result.capabilities.tools is not None
        assert session.initialize_result.capabilities.resources is not None
        tools = (await session.list_tools()).tools
        assert [t.name for t in tools] == ["ask"]
        assert tools[0].input_schema["required"] == ["message"]

        first = await session.call_tool("ask", {"message": "/remember color = blue"})
        assert not first.is_error, first
        assert first.content[0].text == "Remembered color."  # type: ignore[union-attr]
        second = await session.call_tool("ask", {"message": "/recall color"})
        assert second.content[0].text == "color = blue"  # type: ignore[union-attr]
        data = second.structured_content
        assert data["status"] == "completed" and data["smith_id"] == smith_id
        assert data["thread_id"] == first.structured_content["thread_id"]  # one thread per caller: history

        resources = (await session.list_resources()).resources
        assert [(r.uri, r.name, r.mime_type) for r in resources] == [("memory://color", "color", "text/plain")]
        read = await session.read_resource("memory://color")
        assert read.contents[0].text == "blue"  # type: ignore[union-attr]

        await session.call_tool("ask", {"message": "/remember size = L"})  # a run's write shows in the list
        assert [r.uri for r in (await session.list_resources()).resources] == ["memory://color", "memory://size"]
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["memory://{key}"]

    runs = (await api.get("/v1/runs", params={"source": "mcp"}, headers=bearer(admin_token))).json()["data"]
    assert {r["id"] for r in runs} >= {first.structured_content["run_id"], second.structured_content["run_id"]}
    run = (await api.get(f"/v1/runs/{second.structured_content['run_id']}", headers=bearer(admin_token))).json()
    assert run["source"] == "mcp" and run["metadata"]["deployment_id"] == deployment["id"]
    assert run["metadata"]["sender"] == {"is_owner": True, "channel": "mcp", "identity": "mcp:tests",
                                         "display": "tests", "verified": True}
    events = (await api.get("/v1/events", params={"type": "run.queued"}, headers=bearer(admin_token))).json()
    assert run["id"] in {e["data"]["run_id"] for e in events["data"]}
    async with runtime.transaction() as db:  # the second run saw the first one's turn (history)
        messages = await list_run_messages(db, actor=admin, run_id=run["id"])
    assert "/remember color = blue" in [m.content for m in messages]


async def test_suggested_replies_ride_the_structured_content(api: httpx.AsyncClient, admin_token: str,
                                                            base: str) -> None:  # MCP-2
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    async with mcp_client(endpoint(base, deployment["id"]), admin_token) as session:
        result = await session.call_tool("ask", {"message": "/chips Yes | No"})
    assert not result.is_error
    assert result.structured_content["suggested_replies"] == ["Yes", "No"]
    assert result.content[0].text == result.structured_content["reply"]  # type: ignore[union-attr]


async def test_agent_target_mints_one_isolated_smith_per_caller(api: httpx.AsyncClient, admin_token: str,
                                                               base: str) -> None:  # MCP-3, DEP-4
    agent_id, _ = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "agent", agent_id)
    url = endpoint(base, deployment["id"])
    alice = await admin_token_for(api, admin_token, "alice")
    bob = await admin_token_for(api, admin_token, "bob")
    async with mcp_client(url, alice) as session:
        assert (await session.list_resources()).resources == []  # nothing minted by a mere listing
        mine = await session.call_tool("ask", {"message": "/remember color = red"})
    async with mcp_client(url, bob) as session:
        theirs = await session.call_tool("ask", {"message": "/remember color = green"})
        assert (await session.call_tool("ask", {"message": "/recall color"})).content[0].text == "color = green"  # type: ignore[union-attr]
        assert (await session.read_resource("memory://color")).contents[0].text == "green"  # type: ignore[union-attr]
    assert mine.structured_content["smith_id"] != theirs.structured_content["smith_id"]

    alice_again = await admin_token_for(api, admin_token, "alice")  # another token, the same subject
    async with mcp_client(url, alice_again) as session:
        recall = await session.call_tool("ask", {"message": "/recall color"})
        assert recall.content[0].text == "color = red"  # type: ignore[union-attr]
        assert recall.structured_content["smith_id"] == mine.structured_content["smith_id"]
        assert recall.structured_content["thread_id"] == mine.structured_content["thread_id"]
    smith = (await api.get(f"/v1/smiths/{mine.structured_content['smith_id']}", headers=bearer(admin_token))).json()
    assert smith["agent_id"] == agent_id
    minted = (await api.get("/v1/events", params={"type": "smith.minted"}, headers=bearer(admin_token))).json()
    assert sorted(e["data"]["identity"] for e in minted["data"]) == ["mcp:alice", "mcp:bob"]


async def test_concurrent_first_asks_share_one_smith_and_thread(api: httpx.AsyncClient, admin_token: str,
                                                               base: str) -> None:  # DEP-4
    agent_id, _ = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "agent", agent_id)
    carol = await admin_token_for(api, admin_token, "carol")
    async with mcp_client(endpoint(base, deployment["id"]), carol) as session:
        results = await asyncio.gather(*[session.call_tool("ask", {"message": f"hello {i}"}) for i in range(4)])
    assert all(not r.is_error for r in results), results
    assert len({r.structured_content["smith_id"] for r in results}) == 1
    assert len({r.structured_content["thread_id"] for r in results}) == 1


async def test_smith_target_is_one_shared_smith(api: httpx.AsyncClient, admin_token: str,
                                               base: str) -> None:  # MCP-3
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    url = endpoint(base, deployment["id"])
    own = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    async with mcp_client(url, own) as session:  # the smith's own token may use its endpoint
        written = await session.call_tool("ask", {"message": "/remember note = shared"})
    dana = await admin_token_for(api, admin_token, "dana")
    async with mcp_client(url, dana) as session:
        read = await session.call_tool("ask", {"message": "/recall note"})
        assert (await session.read_resource("memory://note")).contents[0].text == "shared"  # type: ignore[union-attr]
    assert read.content[0].text == "note = shared"  # type: ignore[union-attr]
    assert read.structured_content["smith_id"] == written.structured_content["smith_id"] == smith_id
    # Each caller keeps its own conversation with the shared smith.
    assert read.structured_content["thread_id"] != written.structured_content["thread_id"]


async def test_approval_pause_answers_promptly_with_the_run_id(api: httpx.AsyncClient, admin_token: str,
                                                               base: str) -> None:  # MCP-2, APR-1
    _, smith_id = await make_smith(api, admin_token, approval_required_tools=["memory_write"])
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    async with mcp_client(endpoint(base, deployment["id"]), admin_token) as session:
        started = time.monotonic()
        paused = await session.call_tool("ask", {"message": "/remember plan = launch"})
        assert time.monotonic() - started < 10
        data = paused.structured_content
        assert not paused.is_error and data["status"] == "awaiting_approval"
        assert data["pending_approval"]["tool"] == "memory_write"
        assert data["run_id"] in paused.content[0].text and "approv" in paused.content[0].text  # type: ignore[union-attr]
        assert (await session.list_resources()).resources == []

        decided = await api.post(f"/v1/runs/{data['run_id']}/submit", json={"decision": "approve"},
                                 headers=bearer(admin_token))
        assert decided.status_code == 200, decided.text
        run = await wait_run(api, admin_token, data["run_id"])
        assert run["status"] == "completed" and run["output"]["text"] == "Remembered plan."
        assert [r.uri for r in (await session.list_resources()).resources] == ["memory://plan"]


async def test_modern_client_without_handshake(api: httpx.AsyncClient, admin_token: str,
                                               base: str) -> None:  # MCP-1
    """The SDK's default client probes server/discover and speaks the sessionless 2026-07-28 revision."""
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {admin_token}"},
                              timeout=httpx2.Timeout(30.0, read=150.0))
    async with http, Client(streamable_http_client(endpoint(base, deployment["id"]), http_client=http),
                            mode="auto") as client:
        result = await client.call_tool("ask", {"message": "/remember mode = modern"})
        assert result.content[0].text == "Remembered mode."  # type: ignore[union-attr]
        assert [r.uri for r in (await client.list_resources()).resources] == ["memory://mode"]
