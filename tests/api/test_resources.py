"""/v1 agents, smiths, memory, tokens and events over the real FastAPI app, on both databases."""

from __future__ import annotations

import httpx

from tests.conftest import bearer


async def _agent(api: httpx.AsyncClient, token: str, **body: object) -> dict:
    response = await api.post("/v1/agents", json={"name": "Assistant", **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def _smith(api: httpx.AsyncClient, token: str, agent_id: str, name: str = "Dana") -> dict:
    response = await api.post("/v1/smiths", json={"agent_id": agent_id, "name": name},
                              headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def test_agent_crud(api: httpx.AsyncClient, admin_token: str) -> None:  # API-1
    created = await _agent(api, admin_token, instructions="Be brief.",
                           model={"provider": "openai", "name": "gpt-4o-mini"},
                           approval_required_tools=["telegram_send_message"])
    assert created["id"].startswith("agt_")
    assert created["model"]["provider"] == "openai"
    assert created["approval_required_tools"] == ["telegram_send_message"]

    got = await api.get(f"/v1/agents/{created['id']}", headers=bearer(admin_token))
    assert got.json()["instructions"] == "Be brief."

    patched = await api.patch(f"/v1/agents/{created['id']}", json={"name": "Renamed"},
                              headers=bearer(admin_token))
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["instructions"] == "Be brief."  # untouched fields stay

    deleted = await api.delete(f"/v1/agents/{created['id']}", headers=bearer(admin_token))
    assert deleted.status_code == 204
    missing = await api.get(f"/v1/agents/{created['id']}", headers=bearer(admin_token))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "agent_not_found"


async def test_smith_crud_and_agent_with_smiths_cannot_be_deleted(
    api: httpx.AsyncClient, admin_token: str
) -> None:
    agent = await _agent(api, admin_token)
    smith = await _smith(api, admin_token, agent["id"])
    assert smith["id"].startswith("smt_")
    assert smith["agent_id"] == agent["id"]

    blocked = await api.delete(f"/v1/agents/{agent['id']}", headers=bearer(admin_token))
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] == "agent_has_smiths"

    renamed = await api.patch(f"/v1/smiths/{smith['id']}", json={"name": "Jo"},
                              headers=bearer(admin_token))
    assert renamed.json()["name"] == "Jo"
    assert (await api.delete(f"/v1/smiths/{smith['id']}", headers=bearer(admin_token))).status_code == 204
    assert (await api.get(f"/v1/smiths/{smith['id']}", headers=bearer(admin_token))).status_code == 404
    assert (await api.delete(f"/v1/agents/{agent['id']}", headers=bearer(admin_token))).status_code == 204


async def test_smith_needs_an_existing_agent(api: httpx.AsyncClient, admin_token: str) -> None:
    response = await api.post("/v1/smiths", json={"agent_id": "agt_nope", "name": "x"},
                              headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "agent_not_found"


async def test_cursor_pagination_walks_every_item_once(api: httpx.AsyncClient, admin_token: str) -> None:
    ids = [(await _agent(api, admin_token, name=f"agent {i}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/agents", params=params, headers=bearer(admin_token))).json()
        seen.extend(a["id"] for a in page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen == sorted(ids, reverse=True)  # newest first, no repeats, none missing


async def test_memory_put_list_get_delete(api: httpx.AsyncClient, admin_token: str) -> None:
    agent = await _agent(api, admin_token)
    smith = await _smith(api, admin_token, agent["id"])
    base = f"/v1/smiths/{smith['id']}/memory"
    put = await api.put(f"{base}/prefs/tone", json={"value": "warm"}, headers=bearer(admin_token))
    assert put.status_code == 200
    assert put.json()["key"] == "prefs/tone"
    again = await api.put(f"{base}/prefs/tone", json={"value": "formal"}, headers=bearer(admin_token))
    assert again.json()["value"] == "formal"
    listed = (await api.get(base, headers=bearer(admin_token))).json()["data"]
    assert [(e["key"], e["value"]) for e in listed] == [("prefs/tone", "formal")]
    assert (await api.delete(f"{base}/prefs/tone", headers=bearer(admin_token))).status_code == 204
    gone = await api.get(f"{base}/prefs/tone", headers=bearer(admin_token))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "memory_not_found"
    bad = await api.put(f"{base}/%20bad", json={"value": "x"}, headers=bearer(admin_token))
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_memory_key"


async def test_tokens_shown_once_listed_without_values_and_revocable(
    api: httpx.AsyncClient, admin_token: str
) -> None:  # API-2
    minted = await api.post("/v1/tokens", json={"subject": "ci-bot", "name": "CI"},
                            headers=bearer(admin_token))
    assert minted.status_code == 201
    value = minted.json()["token"]
    assert value.startswith("ic_admin_")
    assert minted.json()["hint"] == value[-4:]

    listed = await api.get("/v1/tokens", headers=bearer(admin_token))
    assert value not in listed.text
    assert all("token" not in t for t in listed.json()["data"])
    assert {t["subject"] for t in listed.json()["data"]} >= {"ci-bot"}

    assert (await api.get("/v1/agents", headers=bearer(value))).status_code == 200
    revoked = await api.delete(f"/v1/tokens/{minted.json()['id']}", headers=bearer(admin_token))
    assert revoked.json()["revoked"] is True
    after = await api.get("/v1/agents", headers=bearer(value))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_token"
    assert after.headers["www-authenticate"] == "Bearer"


async def test_events_feed_records_changes_and_filters(api: httpx.AsyncClient, admin_token: str) -> None:
    agent = await _agent(api, admin_token)
    await _smith(api, admin_token, agent["id"])
    feed = (await api.get("/v1/events", headers=bearer(admin_token))).json()["data"]
    types = [e["type"] for e in feed]
    assert types.index("smith.created") < types.index("agent.created")  # newest first
    assert all(e["id"].startswith("evt_") for e in feed)
    only = (await api.get("/v1/events", params={"type": "agent.created"},
                          headers=bearer(admin_token))).json()["data"]
    assert [e["type"] for e in only] == ["agent.created"]
    prefix = (await api.get("/v1/events", params={"type": "smith."},
                            headers=bearer(admin_token))).json()["data"]
    assert {e["type"] for e in prefix} == {"smith.created"}


async def test_deleting_a_smith_removes_its_memory_and_revokes_its_tokens(
    api: httpx.AsyncClient, admin_token: str
) -> None:
    agent = await _agent(api, admin_token)
    smith = await _smith(api, admin_token, agent["id"])
    smith_token = (await api.post(f"/v1/smiths/{smith['id']}/tokens", json={},
                                  headers=bearer(admin_token))).json()["token"]
    await api.put(f"/v1/smiths/{smith['id']}/memory/k", json={"value": "v"}, headers=bearer(admin_token))
    assert (await api.delete(f"/v1/smiths/{smith['id']}", headers=bearer(admin_token))).status_code == 204
    assert (await api.get("/v1/smiths", headers=bearer(smith_token))).status_code == 401
