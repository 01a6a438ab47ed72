"""The real product, started by ./run.sh, answering over HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Server

pytestmark = pytest.mark.integration


def _h(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}", "IC-Api-Version": "2026-05-01"}


def test_console_is_served_at_root(server: Server) -> None:
    response = httpx.get(f"{server.url}/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


def test_bootstrap_admin_token_works_over_http(server: Server) -> None:  # API-1, API-2
    listed = httpx.get(f"{server.url}/v1/smiths", headers=_h(server))
    assert listed.status_code == 200
    assert listed.json() == {"data": [], "next_cursor": None} or "data" in listed.json()
    agent = httpx.post(f"{server.url}/v1/agents", json={"name": "Over HTTP"}, headers=_h(server))
    assert agent.status_code == 201
    smith = httpx.post(f"{server.url}/v1/smiths", json={"agent_id": agent.json()["id"], "name": "S"},
                       headers=_h(server))
    assert smith.status_code == 201
    ids = [s["id"] for s in httpx.get(f"{server.url}/v1/smiths", headers=_h(server)).json()["data"]]
    assert smith.json()["id"] in ids


def test_api_errors_are_json_not_html(server: Server) -> None:
    for response in (
        httpx.get(f"{server.url}/v1/nothing-here", headers=_h(server)),
        httpx.get(f"{server.url}/v1/agents"),
        httpx.delete(f"{server.url}/v1/agents", headers=_h(server)),
    ):
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert set(response.json()["error"]) >= {"code", "message"}
    assert httpx.get(f"{server.url}/v1/openapi.json").json()["info"]["version"] == "2026-05-01"


def test_admin_token_never_reaches_the_log(server: Server) -> None:  # API-3
    httpx.get(f"{server.url}/v1/agents", headers=_h(server))
    assert server.admin_token not in server.log()
