"""Every error is JSON {"error": {"code", "message"}} with a stable code (API-1)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import bearer


async def test_missing_and_wrong_tokens_are_401(api: httpx.AsyncClient, admin_token: str) -> None:
    none = await api.get("/v1/agents")
    assert none.status_code == 401
    assert none.json()["error"]["code"] == "missing_token"
    wrong = await api.get("/v1/agents", headers={"Authorization": "Bearer ic_admin_nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_token"
    basic = await api.get("/v1/agents", headers={"Authorization": "Basic abc"})
    assert basic.json()["error"]["code"] == "invalid_token"


async def test_api_version_header(api: httpx.AsyncClient, admin_token: str) -> None:  # API-1
    headers = {"Authorization": f"Bearer {admin_token}"}
    default = await api.get("/v1/agents", headers=headers)
    assert default.status_code == 200
    assert default.headers["IC-Api-Version"] == "2026-05-01"
    unknown = await api.get("/v1/agents", headers={**headers, "IC-Api-Version": "2019-01-01"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unsupported_api_version"


async def test_unknown_paths_and_methods_answer_json(api: httpx.AsyncClient, admin_token: str) -> None:
    missing = await api.get("/v1/does-not-exist", headers=bearer(admin_token))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["error"]["code"] == "not_found"
    method = await api.put("/v1/agents", headers=bearer(admin_token))
    assert method.status_code == 405
    assert method.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "model": {"provider": "nope"}}, "model.provider"),
        ({"name": "ok", "model": {"temperature": 9}}, "model.temperature"),
        ({"name": "ok", "unexpected": 1}, "unexpected"),
        ({"name": "ok", "approval_required_tools": ["Bad Name"]}, "approval_required_tools"),
    ],
)
async def test_validation_errors_name_the_field(
    api: httpx.AsyncClient, admin_token: str, body: dict, field: str
) -> None:
    response = await api.post("/v1/agents", json=body, headers=bearer(admin_token))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"].startswith(field)
    listed = (await api.get("/v1/agents", headers=bearer(admin_token))).json()["data"]
    assert listed == []  # nothing half-written


async def test_malformed_json_is_400(api: httpx.AsyncClient, admin_token: str) -> None:
    response = await api.post("/v1/agents", content=b"{not json",
                              headers={**bearer(admin_token), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_bad_pagination_parameters(api: httpx.AsyncClient, admin_token: str) -> None:
    response = await api.get("/v1/agents", params={"limit": 0}, headers=bearer(admin_token))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "limit"


async def test_openapi_and_docs_are_served(api: httpx.AsyncClient) -> None:
    spec = await api.get("/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {"/v1/agents", "/v1/smiths", "/v1/tokens", "/v1/events"} <= set(paths)
    docs = await api.get("/v1/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
