"""The MCP endpoint's HTTP edge: bearer auth, deployment scope, Origin/Host, and protocol errors that
must come back as JSON-RPC errors (never a 500)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from app.api.mcp import allowed
from tests.conftest import bearer
from tests.mcp.conftest import PUBLIC_URL, admin_token_for, create_mcp, endpoint, mcp_client, rpc
from tests.runs.conftest import make_smith

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def _smith_endpoint(api: httpx.AsyncClient, token: str, base: str) -> tuple[str, str, dict[str, Any]]:
    agent_id, smith_id = await make_smith(api, token)
    deployment = await create_mcp(api, token, "smith", smith_id)
    return agent_id, smith_id, {"url": endpoint(base, deployment["id"]), **deployment}


async def test_bearer_token_is_required(api: httpx.AsyncClient, admin_token: str, base: str) -> None:  # MCP-1
    _, _, dep = await _smith_endpoint(api, admin_token, base)
    missing = await rpc(dep["url"], INIT, token=None)
    _envelope(missing, 401, "missing_token")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = await rpc(dep["url"], INIT, token="ic_admin_not-a-real-token")
    _envelope(bad, 401, "invalid_token")
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    basic = await rpc(dep["url"], INIT, token=None, headers={"Authorization": f"Basic {admin_token}"})
    _envelope(basic, 401, "missing_token")

    revoked = await api.post("/v1/tokens", json={"subject": "gone"}, headers=bearer(admin_token))
    await api.delete(f"/v1/tokens/{revoked.json()['id']}", headers=bearer(admin_token))
    _envelope(await rpc(dep["url"], INIT, token=revoked.json()["token"]), 401, "invalid_token")

    ok = await rpc(dep["url"], INIT, token=admin_token)
    assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "ingram-smith"
    assert "mcp-session-id" not in ok.headers  # stateless: any process can answer the next request

    with pytest.raises(BaseException) as refused:  # the SDK client surfaces the refusal instead of hanging
        async with mcp_client(dep["url"], "ic_admin_wrong"):
            pass
    assert _mcp_errors(refused.value)


def _mcp_errors(exc: BaseException) -> list[MCPError]:
    """The MCPErrors inside what the client's task groups raised."""
    if isinstance(exc, MCPError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [e for inner in exc.exceptions for e in _mcp_errors(inner)]
    return []


async def test_unknown_deleted_and_foreign_deployments(api: httpx.AsyncClient, admin_token: str,
                                                       base: str) -> None:  # MCP-1, MCP-3
    agent_id, smith_id, dep = await _smith_endpoint(api, admin_token, base)
    _envelope(await rpc(endpoint(base, "dep_nope"), INIT, token=admin_token), 404, "deployment_not_found")
    _envelope(await rpc(endpoint(base, "dep_nope"), INIT, token=None), 401, "missing_token")  # no existence leak

    _, other_smith = await make_smith(api, admin_token)
    other_token = (await api.post(f"/v1/smiths/{other_smith}/tokens", json={},
                                  headers=bearer(admin_token))).json()["token"]
    _envelope(await rpc(dep["url"], INIT, token=other_token), 403, "wrong_smith")
    catch_all = await create_mcp(api, admin_token, "agent", agent_id)
    _envelope(await rpc(endpoint(base, catch_all["id"]), INIT, token=other_token), 403, "wrong_smith")
    own_token = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    assert (await rpc(dep["url"], INIT, token=own_token)).status_code == 200

    removed = await api.delete(f"/v1/deployments/{dep['id']}", headers=bearer(admin_token))
    assert removed.status_code == 204
    _envelope(await rpc(dep["url"], INIT, token=admin_token), 404, "deployment_not_found")


async def test_origin_and_host_are_checked(api: httpx.AsyncClient, admin_token: str, base: str) -> None:  # MCP-1
    _, _, dep = await _smith_endpoint(api, admin_token, base)
    evil = await rpc(dep["url"], INIT, token=admin_token, headers={"Origin": "https://evil.example"})
    _envelope(evil, 403, "invalid_origin")
    _envelope(await rpc(dep["url"], INIT, token=admin_token, headers={"Origin": "null"}), 403, "invalid_origin")
    # Checked before the token: a rebinding page learns nothing, not even whether a token is needed.
    _envelope(await rpc(dep["url"], INIT, token=None, headers={"Origin": "https://evil.example"}), 403,
              "invalid_origin")
    for origin in (PUBLIC_URL, "http://localhost:3000", "http://127.0.0.1:8000"):
        fine = await rpc(dep["url"], INIT, token=admin_token, headers={"Origin": origin})
        assert fine.status_code == 200, (origin, fine.text)

    _envelope(await rpc(dep["url"], INIT, token=admin_token, headers={"Host": "evil.example"}), 421, "invalid_host")
    _envelope(await rpc(dep["url"], INIT, token=admin_token, headers={"Host": "mcp.example.com.evil.example"}), 421,
              "invalid_host")
    for host in ("mcp.example.com", "mcp.example.com:443", "localhost:8000"):
        fine = await rpc(dep["url"], INIT, token=admin_token, headers={"Host": host})
        assert fine.status_code == 200, (host, fine.text)


def test_allowed_hosts_derive_from_the_public_url() -> None:  # MCP-1
    hosts, origins = allowed("https://deploy.example.com")
    assert {"deploy.example.com", "deploy.example.com:443", "localhost:*", "127.0.0.1:*", "[::1]:*"} <= set(hosts)
    assert {"https://deploy.example.com", "http://localhost:*"} <= set(origins)
    assert "http://deploy.example.com" not in origins
    hosts, origins = allowed("http://10.0.0.5:8080")
    assert "10.0.0.5:8080" in hosts and "10.0.0.5" not in hosts
    assert "http://10.0.0.5:8080" in origins


async def test_get_and_delete_answer_405(api: httpx.AsyncClient, admin_token: str, base: str) -> None:  # MCP-1
    _, _, dep = await _smith_endpoint(api, admin_token, base)
    async with httpx.AsyncClient() as client:
        for method in ("GET", "DELETE"):
            response = await client.request(method, dep["url"], headers={**bearer(admin_token),
                                                                         "Accept": "text/event-stream"})
            _envelope(response, 405, "method_not_allowed")
            assert response.headers["Allow"] == "POST"


async def test_not_running_is_503_not_500(api: httpx.AsyncClient, admin_token: str) -> None:  # MCP-1
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    response = await api.post(f"/v1/deployments/{deployment['id']}/mcp", json=INIT,
                              headers={**bearer(admin_token), "Host": "localhost"})
    _envelope(response, 503, "mcp_not_running")


async def test_protocol_errors_are_json_rpc_errors(api: httpx.AsyncClient, admin_token: str,
                                                   base: str) -> None:  # MCP-1, MCP-2
    _, _, dep = await _smith_endpoint(api, admin_token, base)
    url = dep["url"]
    async with mcp_client(url, admin_token) as session:
        with pytest.raises(MCPError) as unknown_tool:
            await session.call_tool("nope", {})
        assert unknown_tool.value.code == -32602
        with pytest.raises(MCPError) as unknown_uri:
            await session.read_resource("memory://missing")
        assert unknown_uri.value.code == -32002 and unknown_uri.value.data == {"uri": "memory://missing"}
        with pytest.raises(MCPError):
            await session.read_resource("https://example.com/x")
        # Bad arguments are tool errors the calling model can read and fix (MCP tools spec).
        empty = await session.call_tool("ask", {"message": "   "})
        assert empty.is_error and "message" in empty.content[0].text  # type: ignore[union-attr]
        too_long = await session.call_tool("ask", {"message": "x" * 32_001})
        assert too_long.is_error and "32000" in too_long.content[0].text  # type: ignore[union-attr]
        extra = await session.call_tool("ask", {"message": "hi", "mode": "sudo"})
        assert extra.is_error and "mode" in extra.content[0].text  # type: ignore[union-attr]

    def _jsonrpc_error(response: httpx.Response, status: int, code: int) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["jsonrpc"] == "2.0" and response.json()["error"]["code"] == code, response.text

    _jsonrpc_error(await rpc(url, None, token=admin_token, content=b'{"jsonrpc": "2.0", "id": 1, "meth'), 400,
                   -32700)
    _jsonrpc_error(await rpc(url, [INIT, INIT], token=admin_token), 400, -32602)  # batches are not MCP
    _jsonrpc_error(await rpc(url, {"id": 1, "method": 5}, token=admin_token), 400, -32602)
    unknown_method = await rpc(url, {"jsonrpc": "2.0", "id": 7, "method": "prompts/list"}, token=admin_token)
    assert unknown_method.json()["error"]["code"] == -32601 and unknown_method.json()["id"] == 7
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ask"}}
    missing_args = await rpc(url, call, token=admin_token)
    assert missing_args.status_code == 200 and missing_args.json()["result"]["isError"] is True
    huge = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "ask", "arguments": {"message": "x" * (2 * 1024 * 1024)}}}
    _jsonrpc_error(await rpc(url, huge, token=admin_token), 413, -32600)  # oversized message
    wrong_type = await rpc(url, None, token=admin_token, content=json.dumps(INIT).encode(),
                           headers={"Content-Type": "text/plain"})
    _jsonrpc_error(wrong_type, 400, -32600)
    # After all of that, the endpoint still answers.
    alice = await admin_token_for(api, admin_token, "alice")
    async with mcp_client(url, alice) as session:
        assert (await session.call_tool("ask", {"message": "still here"})).content[0].text == "You said: still here"  # type: ignore[union-attr]
