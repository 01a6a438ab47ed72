"""Approvals (APR-1): a tool that needs approval pauses the run until the owner decides."""

from __future__ import annotations

import httpx
import pytest

from jobs.runner import RunWorkers
from tests.conftest import bearer
from tests.runs.conftest import make_smith, start_run, wait_run


@pytest.fixture
async def paused(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers) -> dict:
    _, smith_id = await make_smith(api, admin_token, approval_required_tools=["memory_write"])
    queued = await start_run(api, admin_token, smith_id, "/remember plan = launch")
    run = await wait_run(api, admin_token, queued["id"], until={"awaiting_approval"})
    return {"smith_id": smith_id, "run": run}


async def test_pause_shows_the_call_and_fires_the_event(api: httpx.AsyncClient, admin_token: str,
                                                        paused: dict) -> None:  # APR-1
    run = paused["run"]
    assert run["pending_approval"]["tool"] == "memory_write"
    assert run["pending_approval"]["arguments"] == {"key": "plan", "value": "launch"}
    assert run["usage"]["model_calls"] == 1  # the pause stored the reply's usage with the status
    event = (await api.get("/v1/events", params={"type": "approval.required"},
                           headers=bearer(admin_token))).json()["data"][0]
    assert event["data"]["tool"] == "memory_write"
    assert event["data"]["run_id"] == run["id"]
    memory = (await api.get(f"/v1/smiths/{paused['smith_id']}/memory", headers=bearer(admin_token))).json()
    assert memory["data"] == []  # nothing happened yet


async def test_approve_runs_the_tool(api: httpx.AsyncClient, admin_token: str, paused: dict) -> None:  # APR-1
    response = await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "approve"},
                              headers=bearer(admin_token))
    assert response.status_code == 200, response.text
    run = await wait_run(api, admin_token, paused["run"]["id"])
    assert run["status"] == "completed"
    assert run["output"]["text"] == "Remembered plan."
    assert run["usage"]["model_calls"] == 2  # the call before the pause and the one after it
    memory = (await api.get(f"/v1/smiths/{paused['smith_id']}/memory", headers=bearer(admin_token))).json()
    assert [(m["key"], m["value"]) for m in memory["data"]] == [("plan", "launch")]
    again = await api.post(f"/v1/runs/{run['id']}/submit", json={"decision": "approve"},
                           headers=bearer(admin_token))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_awaiting_approval"


async def test_reject_tells_the_model(api: httpx.AsyncClient, admin_token: str, paused: dict) -> None:  # APR-1
    await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "reject"},
                   headers=bearer(admin_token))
    run = await wait_run(api, admin_token, paused["run"]["id"])
    assert run["status"] == "completed"
    assert run["output"]["text"] == "The owner rejected this call."
    memory = (await api.get(f"/v1/smiths/{paused['smith_id']}/memory", headers=bearer(admin_token))).json()
    assert memory["data"] == []


async def test_edit_runs_the_correction_in_the_same_thread(api: httpx.AsyncClient, admin_token: str,
                                                           paused: dict) -> None:  # APR-1, APR-2
    missing = await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "edit"},
                             headers=bearer(admin_token))
    assert missing.status_code == 422
    await api.post(f"/v1/runs/{paused['run']['id']}/submit",
                   json={"decision": "edit", "message": "/remember plan = wait"}, headers=bearer(admin_token))
    run = await wait_run(api, admin_token, paused["run"]["id"], until={"awaiting_approval", "completed"})
    assert run["status"] == "awaiting_approval"  # the correction asks again, for the new value
    assert run["pending_approval"]["arguments"] == {"key": "plan", "value": "wait"}
    await api.post(f"/v1/runs/{run['id']}/submit", json={"decision": "approve"}, headers=bearer(admin_token))
    done = await wait_run(api, admin_token, run["id"])
    assert done["metadata"]["thread_id"] == paused["run"]["metadata"]["thread_id"]
    memory = (await api.get(f"/v1/smiths/{paused['smith_id']}/memory", headers=bearer(admin_token))).json()
    assert [(m["key"], m["value"]) for m in memory["data"]] == [("plan", "wait")]


async def test_only_the_owner_may_decide(api: httpx.AsyncClient, admin_token: str, paused: dict) -> None:  # APR-1
    agent = (await api.get("/v1/agents", headers=bearer(admin_token))).json()["data"][0]
    other = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "other"},
                            headers=bearer(admin_token))).json()
    stranger = (await api.post(f"/v1/smiths/{other['id']}/tokens", json={},
                               headers=bearer(admin_token))).json()["token"]
    denied = await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "approve"},
                            headers=bearer(stranger))
    assert denied.status_code == 403
    owner = (await api.post(f"/v1/smiths/{paused['smith_id']}/tokens", json={},
                            headers=bearer(admin_token))).json()["token"]
    allowed = await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "approve"},
                             headers=bearer(owner))
    assert allowed.status_code == 200


async def test_cancel_a_paused_run(api: httpx.AsyncClient, admin_token: str, paused: dict) -> None:
    cancelled = await api.post(f"/v1/runs/{paused['run']['id']}/cancel", headers=bearer(admin_token))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    twice = await api.post(f"/v1/runs/{paused['run']['id']}/cancel", headers=bearer(admin_token))
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "run_finished"
    late = await api.post(f"/v1/runs/{paused['run']['id']}/submit", json={"decision": "approve"},
                          headers=bearer(admin_token))
    assert late.status_code == 409
