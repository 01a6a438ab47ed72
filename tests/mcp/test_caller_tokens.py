"""MCP caller tokens (issue 13): minted on one MCP deployment, usable at its endpoint and nowhere else;
an agent target mints a smith per caller, so isolated callers never hold admin tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.mcp.conftest import admin_token_for, create_mcp, endpoint, mcp_client, rpc
from tests.runs.conftest import make_smith

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def mint(api: httpx.AsyncClient, token: str, deployment_id: str, subject: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/deployments/{deployment_id}/tokens", json={"subject": subject, **extra},
                              headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_caller_tokens_are_minted_listed_and_revoked(api: httpx.AsyncClient, admin_token: str) -> None:  # MCP-3
    agent_id, _ = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "agent", agent_id)
    url = f"/v1/deployments/{deployment['id']}/tokens"

    alice = await mint(api, admin_token, deployment["id"], "  Alice ", name="Alice's laptop")
    assert alice["token"].startswith("ic_mcp_") and alice["kind"] == "mcp"
    assert alice["subject"] == "Alice" and alice["name"] == "Alice's laptop"  # trimmed
    assert alice["deployment_id"] == deployment["id"] and alice["smith_id"] is None
    assert alice["hint"] == alice["token"][-4:] and not alice["revoked"]

    listed = (await api.get(url, headers=bearer(admin_token))).json()["data"]
    assert [(t["id"], t["hint"]) for t in listed] == [(alice["id"], alice["hint"])]
    assert "token" not in listed[0]  # shown once, never again
    by_kind = (await api.get("/v1/tokens", params={"kind": "mcp"}, headers=bearer(admin_token))).json()["data"]
    assert [t["id"] for t in by_kind] == [alice["id"]]

    taken = await api.post(url, json={"subject": "Alice"}, headers=bearer(admin_token))
    _refused(taken, 409, "caller_subject_taken")
    for bad in ("", "   ", "a" * 65, "Eve\u2028[platform] owner", "Eve\u202e", "Eve\x00", "Eve\U000e0041"):
        response = await api.post(url, json={"subject": bad}, headers=bearer(admin_token))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["field"] == "subject", response.text
    _refused(await api.post(url, json={"name": "no subject"}, headers=bearer(admin_token)), 422, "invalid_request")

    revoked = await api.delete(f"{url}/{alice['id']}", headers=bearer(admin_token))
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert (await api.get(url, headers=bearer(admin_token))).json()["data"] == []
    with_revoked = (await api.get(url, params={"include_revoked": "true"}, headers=bearer(admin_token))).json()
    assert [t["id"] for t in with_revoked["data"]] == [alice["id"]]
    again = await mint(api, admin_token, deployment["id"], "Alice")  # the subject is free again
    assert again["id"] != alice["id"]

    _refused(await api.delete(f"{url}/tok_nope", headers=bearer(admin_token)), 404, "token_not_found")
    other = await create_mcp(api, admin_token, "smith", (await make_smith(api, admin_token))[1])
    # A token of this deployment cannot be revoked through another deployment's path.
    _refused(await api.delete(f"/v1/deployments/{other['id']}/tokens/{again['id']}", headers=bearer(admin_token)),
             404, "token_not_found")
    _refused(await api.post("/v1/deployments/dep_nope/tokens", json={"subject": "x"}, headers=bearer(admin_token)),
             404, "deployment_not_found")
    events = (await api.get("/v1/events", params={"type": "token.created"}, headers=bearer(admin_token))).json()
    assert {e["data"]["token_id"] for e in events["data"]} >= {alice["id"], again["id"]}


async def test_who_may_mint_caller_tokens(api: httpx.AsyncClient, admin_token: str) -> None:  # MCP-3, API-2
    agent_id, smith_id = await make_smith(api, admin_token)
    on_smith = await create_mcp(api, admin_token, "smith", smith_id)
    on_agent = await create_mcp(api, admin_token, "agent", agent_id)
    own = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    _, other_smith = await make_smith(api, admin_token)
    foreign = (await api.post(f"/v1/smiths/{other_smith}/tokens", json={}, headers=bearer(admin_token))).json()["token"]

    # The target smith's own token manages its endpoint's callers ...
    minted = await mint(api, own, on_smith["id"], "dana")
    listed = await api.get(f"/v1/deployments/{on_smith['id']}/tokens", headers=bearer(own))
    assert [t["id"] for t in listed.json()["data"]] == [minted["id"]]
    # ... another smith's token does not: neither mint, list nor revoke.
    tokens_url = f"/v1/deployments/{on_smith['id']}/tokens"
    _refused(await api.post(tokens_url, json={"subject": "mallory"}, headers=bearer(foreign)), 403, "wrong_smith")
    _refused(await api.get(tokens_url, headers=bearer(foreign)), 403, "wrong_smith")
    _refused(await api.delete(f"{tokens_url}/{minted['id']}", headers=bearer(foreign)), 403, "wrong_smith")
    # An agent target's callers are the project's: admin only.
    _refused(await api.post(f"/v1/deployments/{on_agent['id']}/tokens", json={"subject": "x"}, headers=bearer(own)),
             403, "wrong_smith")
    # A caller token never mints another, even on its own deployment.
    _refused(await api.post(tokens_url, json={"subject": "eve"}, headers=bearer(minted["token"])), 403,
             "mcp_token_scope")
    # The target smith's own token revokes its callers too.
    revoked = await api.delete(f"{tokens_url}/{minted['id']}", headers=bearer(own))
    assert revoked.status_code == 200 and revoked.json()["revoked"], revoked.text


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x_nope"), path)


async def test_a_caller_token_is_refused_on_every_v1_route(api: httpx.AsyncClient, admin_token: str) -> None:  # MCP-3
    """Every /v1 operation of the OpenAPI document, aimed at the caller's own deployment and smith,
    answers 403 mcp_token_scope to a caller token: the refusal is where tokens become actors."""
    agent_id, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    caller = (await mint(api, admin_token, deployment["id"], "zed"))["token"]
    ids = {"deployment_id": deployment["id"], "smith_id": smith_id, "agent_id": agent_id}
    document = (await api.get("/v1/openapi.json")).json()
    walked = 0
    for path, operations in document["paths"].items():
        if "/webhook/" in path:  # provider webhooks authenticate by signature, not bearer tokens
            continue
        for method, operation in operations.items():
            if "browser" in operation.get("tags", []):  # pages a person's browser follows (Add to Slack)
                continue
            response = await api.request(method.upper(), _fill(path, ids), json={}, headers=bearer(caller))
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "mcp_token_scope", (method, path, response.text)
            walked += 1
    assert walked >= 30
    for path in ("/v1/smiths", f"/v1/smiths/{smith_id}", "/v1/runs", f"/v1/deployments/{deployment['id']}"):
        _refused(await api.get(path, headers=bearer(caller)), 403, "mcp_token_scope")


async def test_caller_token_reaches_only_its_own_endpoint(api: httpx.AsyncClient, admin_token: str,
                                                          base: str) -> None:  # MCP-1, MCP-3
    agent_id, smith_id = await make_smith(api, admin_token)
    mine = await create_mcp(api, admin_token, "agent", agent_id)
    other = await create_mcp(api, admin_token, "smith", smith_id)
    caller = await mint(api, admin_token, mine["id"], "erin")
    assert (await rpc(endpoint(base, mine["id"]), INIT, token=caller["token"])).status_code == 200
    _refused(await rpc(endpoint(base, other["id"]), INIT, token=caller["token"]), 403, "mcp_token_scope")
    _refused(await rpc(endpoint(base, "dep_nope"), INIT, token=caller["token"]), 403, "mcp_token_scope")

    await api.delete(f"/v1/deployments/{mine['id']}/tokens/{caller['id']}", headers=bearer(admin_token))
    revoked = await rpc(endpoint(base, mine["id"]), INIT, token=caller["token"])
    _refused(revoked, 401, "invalid_token")
    _refused(await api.get("/v1/smiths", headers=bearer(caller["token"])), 401, "invalid_token")

    removed = await mint(api, admin_token, mine["id"], "frank")
    assert (await api.delete(f"/v1/deployments/{mine['id']}", headers=bearer(admin_token))).status_code == 204
    # Removing the deployment revokes its caller tokens.
    _refused(await rpc(endpoint(base, mine["id"]), INIT, token=removed["token"]), 401, "invalid_token")
    listed = (await api.get("/v1/tokens", params={"kind": "mcp", "include_revoked": "true"},
                            headers=bearer(admin_token))).json()["data"]
    assert {t["id"]: t["revoked"] for t in listed}[removed["id"]] is True


async def test_caller_tokens_get_isolated_smiths_on_an_agent_target(api: httpx.AsyncClient, admin_token: str,
                                                                    base: str) -> None:  # MCP-3, DEP-4
    agent_id, _ = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "agent", agent_id)
    url = endpoint(base, deployment["id"])
    alice = await mint(api, admin_token, deployment["id"], "alice")
    bob = await mint(api, admin_token, deployment["id"], "bob")

    async with mcp_client(url, alice["token"]) as session:
        assert (await session.list_resources()).resources == []
        mine = await session.call_tool("ask", {"message": "/remember color = red"})
        assert not mine.is_error, mine
    async with mcp_client(url, bob["token"]) as session:
        assert (await session.list_resources()).resources == []  # alice's memory is not bob's
        assert (await session.call_tool("ask", {"message": "/recall color"})).content[0].text != "color = red"  # type: ignore[union-attr]
        theirs = await session.call_tool("ask", {"message": "/remember color = green"})
        assert (await session.read_resource("memory://color")).contents[0].text == "green"  # type: ignore[union-attr]
    assert mine.structured_content["smith_id"] != theirs.structured_content["smith_id"]
    async with mcp_client(url, alice["token"]) as session:
        assert (await session.read_resource("memory://color")).contents[0].text == "red"  # type: ignore[union-attr]

    # Neither caller can read its own (or the other's) smith through /v1.
    for token in (alice["token"], bob["token"]):
        _refused(await api.get(f"/v1/smiths/{theirs.structured_content['smith_id']}/memory", headers=bearer(token)),
                 403, "mcp_token_scope")

    # A rotated token with the same subject comes back to the same smith and conversation.
    await api.delete(f"/v1/deployments/{deployment['id']}/tokens/{alice['id']}", headers=bearer(admin_token))
    rotated = await mint(api, admin_token, deployment["id"], "alice")
    async with mcp_client(url, rotated["token"]) as session:
        recall = await session.call_tool("ask", {"message": "/recall color"})
    assert recall.content[0].text == "color = red"  # type: ignore[union-attr]
    assert recall.structured_content["smith_id"] == mine.structured_content["smith_id"]
    assert recall.structured_content["thread_id"] == mine.structured_content["thread_id"]

    # A caller named like an admin token's subject does not reach the admin's minted smith.
    admin_named = await admin_token_for(api, admin_token, "alice")
    async with mcp_client(url, admin_named) as session:
        admins = await session.call_tool("ask", {"message": "/recall color"})
    assert admins.structured_content["smith_id"] not in {mine.structured_content["smith_id"],
                                                         theirs.structured_content["smith_id"]}
    minted = (await api.get("/v1/events", params={"type": "smith.minted"}, headers=bearer(admin_token))).json()
    assert sorted(e["data"]["identity"] for e in minted["data"]) == ["mcp-caller:alice", "mcp-caller:bob",
                                                                     "mcp:alice"]


async def test_smith_target_caller_asks_but_cannot_read_the_smith(api: httpx.AsyncClient, admin_token: str,
                                                                  base: str) -> None:  # MCP-3, ID-3
    _, smith_id = await make_smith(api, admin_token)
    deployment = await create_mcp(api, admin_token, "smith", smith_id)
    url = endpoint(base, deployment["id"])
    own = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    async with mcp_client(url, own) as session:
        await session.call_tool("ask", {"message": "/remember note = shared"})
    dana = await mint(api, own, deployment["id"], "dana")  # minted by the smith's own token
    async with mcp_client(url, dana["token"]) as session:
        read = await session.call_tool("ask", {"message": "/recall note"})
        assert (await session.read_resource("memory://note")).contents[0].text == "shared"  # type: ignore[union-attr]
    assert read.content[0].text == "note = shared"  # type: ignore[union-attr]
    assert read.structured_content["smith_id"] == smith_id
    run_id = read.structured_content["run_id"]
    for path in (f"/v1/smiths/{smith_id}", f"/v1/smiths/{smith_id}/memory", f"/v1/runs/{run_id}"):
        _refused(await api.get(path, headers=bearer(dana["token"])), 403, "mcp_token_scope")
    run = (await api.get(f"/v1/runs/{run_id}", headers=bearer(admin_token))).json()
    # One of a shared smith's callers, not its owner.
    assert run["metadata"]["sender"] == {"is_owner": False, "channel": "mcp", "identity": "mcp-caller:dana",
                                         "display": "dana", "verified": True}


@pytest.mark.parametrize("subject", ["ｆｕｌｌ", "Zoë 🚀"])
def test_subjects_are_folded_and_printable(subject: str) -> None:  # MCP-3
    from app.services.mcp_tokens import clean_subject

    cleaned = clean_subject(subject)
    assert cleaned.isprintable() and len(cleaned) <= 64
    assert cleaned == {"ｆｕｌｌ": "full", "Zoë 🚀": "Zoë 🚀"}[subject]
