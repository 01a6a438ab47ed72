"""The /v1 schedules API on SQLite and PostgreSQL: CRUD, validation, scope, run_now (SCH-1..SCH-4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from jobs.runner import RunWorkers
from tests.conftest import bearer
from tests.runs.conftest import wait_run
from tests.schedules.conftest import INPUT, api_smith

BODY = {"name": "morning briefing", "cron": "0 8 * * *", "timezone": "Europe/Athens", "input": INPUT}


def _path(smith_id: str, *rest: str) -> str:
    return "/".join([f"/v1/smiths/{smith_id}/schedules", *rest])


async def _events(api: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return (await api.get("/v1/events?type=schedule.&limit=200", headers=bearer(token))).json()["data"]


async def test_create_read_pause_resume_edit_delete(api: httpx.AsyncClient, admin_token: str) -> None:
    # SCH-1: create with the spec's own example; SCH-3: pause, resume, delete.
    smith = await api_smith(api, admin_token)
    created = await api.post(_path(smith), json=BODY, headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["id"].startswith("sch_") and schedule["smith_id"] == smith
    assert schedule["description"] == "At 08:00, every day (Europe/Athens)"
    assert schedule["enabled"] is True and schedule["grace_seconds"] == 3600
    assert schedule["input"] == INPUT and schedule["last_run_id"] is None
    fires = schedule["next_fires"]
    assert len(fires) == 5
    for fire in fires:  # 08:00 on the Athens wall clock, the same instant in UTC
        local, utc = datetime.fromisoformat(fire["local"]), datetime.fromisoformat(fire["utc"])
        assert (local.hour, local.minute) == (8, 0) and local == utc
        assert utc.utcoffset().total_seconds() == 0 and local.utcoffset().total_seconds() in (7200, 10800)
    assert schedule["next_fire_at"] == fires[0]["utc"]

    listed = (await api.get(_path(smith), headers=bearer(admin_token))).json()["data"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    one = await api.get(_path(smith, schedule["id"]), headers=bearer(admin_token))
    assert one.status_code == 200 and one.json()["description"] == schedule["description"]

    paused = await api.patch(_path(smith, schedule["id"]), json={"enabled": False}, headers=bearer(admin_token))
    assert paused.status_code == 200, paused.text
    assert paused.json()["enabled"] is False and paused.json()["next_fires"] == []
    assert paused.json()["next_fire_at"] is None
    resumed = await api.patch(_path(smith, schedule["id"]), json={"enabled": True}, headers=bearer(admin_token))
    assert resumed.json()["enabled"] is True and len(resumed.json()["next_fires"]) == 5

    edited = await api.patch(_path(smith, schedule["id"]),
                             json={"cron": "*/15 * * * *", "name": "quarterly", "grace_seconds": 60},
                             headers=bearer(admin_token))
    assert edited.status_code == 200, edited.text
    assert edited.json()["description"] == "Every 15 minutes"
    assert edited.json()["name"] == "quarterly" and edited.json()["grace_seconds"] == 60
    minutes = {datetime.fromisoformat(f["utc"]).minute for f in edited.json()["next_fires"]}
    assert minutes <= {0, 15, 30, 45}

    deleted = await api.delete(_path(smith, schedule["id"]), headers=bearer(admin_token))
    assert deleted.status_code == 204
    gone = await api.get(_path(smith, schedule["id"]), headers=bearer(admin_token))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "schedule_not_found"

    # Every change is on the feed.
    types = [e["type"] for e in reversed(await _events(api, admin_token))]
    assert types == ["schedule.created", "schedule.paused", "schedule.resumed", "schedule.updated",
                     "schedule.deleted"]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"cron": "0 25 * * *"}, "invalid_cron", "cron.hour"),
        ({"cron": "61 * * * *"}, "invalid_cron", "cron.minute"),
        ({"cron": "0 8 30 2 *"}, "invalid_cron", "cron.day_of_month"),
        ({"cron": "0 8 * 13 *"}, "invalid_cron", "cron.month"),
        ({"cron": "0 8 * * funday"}, "invalid_cron", "cron.day_of_week"),
        ({"cron": "0 8 * *"}, "invalid_cron", "cron"),
        ({"cron": "@reboot"}, "invalid_cron", "cron"),
        ({"cron": ""}, "invalid_cron", "cron"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone", "timezone"),
        ({"timezone": "+03:00"}, "invalid_timezone", "timezone"),
        ({"input": []}, "invalid_request", "input"),
        ({"input": [{"role": "assistant", "content": "hi"}]}, "invalid_request", "input"),
        ({"input": [{"role": "system", "content": "obey"}]}, "invalid_request", "input.0.role"),
        ({"input": [{"role": "user", "content": ""}]}, "invalid_request", "input.0.content"),
        ({"input": "just a string"}, "invalid_request", "input"),
        ({"grace_seconds": -1}, "invalid_request", "grace_seconds"),
        ({"surprise": 1}, "invalid_request", "surprise"),
    ],
)
async def test_invalid_schedules_name_the_field(api: httpx.AsyncClient, admin_token: str, change: dict[str, Any],
                                                code: str, field: str) -> None:  # SCH-1
    smith = await api_smith(api, admin_token)
    response = await api.post(_path(smith), json={**BODY, **change}, headers=bearer(admin_token))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == field, error
    # The same rules on PATCH (except the create-only shape checks).
    if code != "invalid_request" or field.startswith("input"):
        created = await api.post(_path(smith), json=BODY, headers=bearer(admin_token))
        patched = await api.patch(_path(smith, created.json()["id"]), json=change, headers=bearer(admin_token))
        assert patched.status_code == 422 and patched.json()["error"]["code"] == code, patched.text


async def test_unknown_or_deleted_smith_is_404(api: httpx.AsyncClient, admin_token: str) -> None:  # SCH-1
    missing = await api.post(_path("smt_00000000000000000000000000"), json=BODY, headers=bearer(admin_token))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "smith_not_found"
    smith = await api_smith(api, admin_token)
    created = await api.post(_path(smith), json=BODY, headers=bearer(admin_token))
    assert (await api.delete(f"/v1/smiths/{smith}", headers=bearer(admin_token))).status_code == 204
    for method, path in (("POST", _path(smith)), ("GET", _path(smith)),
                         ("GET", _path(smith, created.json()["id"]))):
        response = await api.request(method, path, json=BODY if method == "POST" else None,
                                     headers=bearer(admin_token))
        assert response.status_code == 404, (method, path, response.text)


async def test_a_schedule_of_another_smith_is_not_found_under_this_one(api: httpx.AsyncClient,
                                                                       admin_token: str) -> None:
    first, second = await api_smith(api, admin_token, "one"), await api_smith(api, admin_token, "two")
    created = await api.post(_path(first), json=BODY, headers=bearer(admin_token))
    response = await api.get(_path(second, created.json()["id"]), headers=bearer(admin_token))
    assert response.status_code == 404 and response.json()["error"]["code"] == "schedule_not_found"


async def test_smith_token_manages_only_its_own_schedules(api: httpx.AsyncClient, admin_token: str) -> None:
    # API-2 applied to SCH-1/SCH-3: a smith token is 403 on any other smith's schedules.
    mine, other = await api_smith(api, admin_token, "mine"), await api_smith(api, admin_token, "other")
    minted = await api.post(f"/v1/smiths/{mine}/tokens", json={"subject": "dana"}, headers=bearer(admin_token))
    token = minted.json()["token"]
    own = await api.post(_path(mine), json=BODY, headers=bearer(token))
    assert own.status_code == 201, own.text
    own_id = own.json()["id"]
    assert (await api.patch(_path(mine, own_id), json={"enabled": False}, headers=bearer(token))).status_code == 200
    assert (await api.post(_path(mine, own_id, "run_now"), headers=bearer(token))).status_code == 202
    theirs = (await api.post(_path(other), json=BODY, headers=bearer(admin_token))).json()["id"]
    for method, path, body in (
        ("POST", _path(other), BODY), ("GET", _path(other), None), ("GET", _path(other, theirs), None),
        ("PATCH", _path(other, theirs), {"enabled": False}), ("DELETE", _path(other, theirs), None),
        ("POST", _path(other, theirs, "run_now"), None),
    ):
        response = await api.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "wrong_smith"
    assert (await api.delete(_path(mine, own_id), headers=bearer(token))).status_code == 204


async def test_run_now_fires_even_when_paused_and_is_a_normal_run(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers
) -> None:  # SCH-3 run_now, SCH-4 listed in Runs and completed by the workers
    smith = await api_smith(api, admin_token)
    created = await api.post(_path(smith), json={**BODY, "enabled": False}, headers=bearer(admin_token))
    schedule_id = created.json()["id"]
    fired = await api.post(_path(smith, schedule_id, "run_now"), headers=bearer(admin_token))
    assert fired.status_code == 202, fired.text
    run = fired.json()
    assert run["id"].startswith("run_") and run["source"] == "schedule" and run["status"] == "queued"
    assert run["metadata"]["schedule_id"] == schedule_id
    assert run["metadata"]["schedule"]["trigger"] == "run_now"
    assert run["input"] == INPUT
    done = await wait_run(api, admin_token, run["id"])
    assert done["status"] == "completed", done
    assert done["output"]["text"]

    listed = (await api.get("/v1/runs?source=schedule", headers=bearer(admin_token))).json()["data"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert (await api.get("/v1/runs?source=api", headers=bearer(admin_token))).json()["data"] == []
    view = (await api.get(_path(smith, schedule_id), headers=bearer(admin_token))).json()
    assert view["last_run_id"] == run["id"] and view["last_run_status"] == "completed"
    assert view["enabled"] is False  # run_now does not resume
    fired_events = [e for e in await _events(api, admin_token) if e["type"] == "schedule.fired"]
    assert [e["run_id"] for e in fired_events] == [run["id"]]
    # Its events stream like any run's (SCH-4).
    timeline = (await api.get(f"/v1/runs/{run['id']}/events", headers=bearer(admin_token))).json()["data"]
    assert timeline[0]["type"] == "run.queued" and timeline[-1]["type"] == "run.completed"


async def test_run_now_twice_gives_two_runs(api: httpx.AsyncClient, admin_token: str) -> None:  # SCH-3
    # Manual fires are not slots: they never collide with each other or with a cron fire.
    smith = await api_smith(api, admin_token)
    schedule_id = (await api.post(_path(smith), json=BODY, headers=bearer(admin_token))).json()["id"]
    ids = {(await api.post(_path(smith, schedule_id, "run_now"), headers=bearer(admin_token))).json()["id"]
           for _ in range(2)}
    assert len(ids) == 2
