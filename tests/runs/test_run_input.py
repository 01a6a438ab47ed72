"""Bad run input is answered clearly and nothing is queued."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import bearer
from tests.runs.conftest import make_smith


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": []}, "input"),
        ({}, "input"),
        ({"input": [{"role": "wizard", "content": "hi"}]}, "input.0.role"),
        ({"input": [{"role": "user", "content": ""}]}, "input.0.content"),
        ({"input": [{"role": "user", "content": "x" * 32_001}]}, "input.0.content"),
        ({"input": [{"role": "user", "content": "x" * 30_000}] * 4}, "input"),
        ({"input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "input"),
        ({"input": [{"role": "user", "content": "hi"}], "extra": 1}, "extra"),
    ],
)
async def test_bad_input_is_422_and_queues_nothing(api: httpx.AsyncClient, admin_token: str,
                                                    body: dict, field: str) -> None:  # RUN-1
    _, smith_id = await make_smith(api, admin_token)
    response = await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(admin_token))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].startswith(field)
    assert (await api.get("/v1/runs", headers=bearer(admin_token))).json()["data"] == []


async def test_unknown_thread_and_smith(api: httpx.AsyncClient, admin_token: str) -> None:
    _, smith_id = await make_smith(api, admin_token)
    body = {"input": [{"role": "user", "content": "hi"}], "thread_id": "thr_nope"}
    thread = await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(admin_token))
    assert thread.status_code == 404
    assert thread.json()["error"]["code"] == "thread_not_found"
    smith = await api.post("/v1/smiths/smt_nope/runs", json={"input": body["input"]}, headers=bearer(admin_token))
    assert smith.status_code == 404
    assert (await api.get("/v1/runs/run_nope", headers=bearer(admin_token))).status_code == 404


async def test_queued_run_can_be_cancelled_before_any_worker(api: httpx.AsyncClient, admin_token: str) -> None:
    _, smith_id = await make_smith(api, admin_token)
    run = (await api.post(f"/v1/smiths/{smith_id}/runs", json={"input": [{"role": "user", "content": "hi"}]},
                          headers=bearer(admin_token))).json()
    cancelled = await api.post(f"/v1/runs/{run['id']}/cancel", headers=bearer(admin_token))
    assert cancelled.json()["status"] == "cancelled"
    events = (await api.get(f"/v1/runs/{run['id']}/events", headers=bearer(admin_token))).json()["data"]
    assert [e["type"] for e in events] == ["run.queued", "run.cancelled"]


async def test_smith_token_sees_only_its_runs(api: httpx.AsyncClient, admin_token: str) -> None:  # API-2
    _, mine = await make_smith(api, admin_token)
    _, other = await make_smith(api, admin_token)
    token = (await api.post(f"/v1/smiths/{mine}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    body = {"input": [{"role": "user", "content": "hi"}]}
    assert (await api.post(f"/v1/smiths/{mine}/runs", json=body, headers=bearer(token))).status_code == 202
    foreign = await api.post(f"/v1/smiths/{other}/runs", json=body, headers=bearer(admin_token))
    assert (await api.post(f"/v1/smiths/{other}/runs", json=body, headers=bearer(token))).status_code == 403
    assert (await api.get(f"/v1/runs/{foreign.json()['id']}", headers=bearer(token))).status_code == 403
    listed = (await api.get("/v1/runs", headers=bearer(token))).json()["data"]
    assert {r["smith_id"] for r in listed} == {mine}
