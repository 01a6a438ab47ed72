"""Token scopes (API-2): a smith token acts only on its own smith."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import bearer


@pytest.fixture
async def two_smiths(api: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    agent = (await api.post("/v1/agents", json={"name": "A"}, headers=bearer(admin_token))).json()
    ids = {}
    for name in ("mine", "other"):
        smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": name},
                                headers=bearer(admin_token))).json()
        ids[name] = smith["id"]
    minted = await api.post(f"/v1/smiths/{ids['mine']}/tokens", json={"subject": "dana"},
                            headers=bearer(admin_token))
    assert minted.status_code == 201
    assert minted.json()["kind"] == "smith"
    assert minted.json()["smith_id"] == ids["mine"]
    return {**ids, "agent": agent["id"], "token": minted.json()["token"]}


async def test_smith_token_reaches_its_own_smith(api: httpx.AsyncClient, two_smiths: dict) -> None:  # API-2
    token = two_smiths["token"]
    assert (await api.get(f"/v1/smiths/{two_smiths['mine']}", headers=bearer(token))).status_code == 200
    put = await api.put(f"/v1/smiths/{two_smiths['mine']}/memory/note", json={"value": "hi"},
                        headers=bearer(token))
    assert put.status_code == 200
    listed = (await api.get("/v1/smiths", headers=bearer(token))).json()["data"]
    assert [s["id"] for s in listed] == [two_smiths["mine"]]
    feed = (await api.get("/v1/events", headers=bearer(token))).json()["data"]
    assert feed and all(e["smith_id"] == two_smiths["mine"] for e in feed)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/smiths/{other}", None),
        ("PATCH", "/v1/smiths/{other}", {"name": "x"}),
        ("DELETE", "/v1/smiths/{other}", None),
        ("GET", "/v1/smiths/{other}/memory", None),
        ("PUT", "/v1/smiths/{other}/memory/k", {"value": "x"}),
        ("GET", "/v1/agents", None),
        ("POST", "/v1/agents", {"name": "x"}),
        ("GET", "/v1/agents/{agent}", None),
        ("POST", "/v1/smiths", {"agent_id": "{agent}", "name": "x"}),
        ("GET", "/v1/tokens", None),
        ("POST", "/v1/tokens", {"subject": "x"}),
        ("POST", "/v1/smiths/{mine}/tokens", {}),
        ("DELETE", "/v1/smiths/{mine}", None),
        ("GET", "/v1/tenant/integrations", None),
    ],
)
async def test_smith_token_gets_403_elsewhere(
    api: httpx.AsyncClient, two_smiths: dict, method: str, path: str, body: dict | None
) -> None:  # API-2
    url = path.format(**two_smiths)
    if body and "agent_id" in body:
        body = {**body, "agent_id": two_smiths["agent"]}
    response = await api.request(method, url, json=body, headers=bearer(two_smiths["token"]))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] in {"wrong_smith", "admin_required"}
