"""Scopes before bodies (issue 13 §2, API-2): every /v1 operation of the OpenAPI document, called with
no token, a foreign smith token and an admin token, each with a valid and an empty (and an undecodable)
body. 401 and 403 come before 422 and 400; an admin is never refused and never gets a 500."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.conftest import bearer
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, run_fake_telegram

MESSAGE = [{"role": "user", "content": "hello"}]
# A valid body per operation that takes one; the walk fails when an operation is missing here.
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/v1/agents"): {"name": "walk"},
    ("PATCH", "/v1/agents/{agent_id}"): {"name": "walked"},
    ("POST", "/v1/smiths"): {"agent_id": "{agent_id}", "name": "walk"},
    ("PATCH", "/v1/smiths/{smith_id}"): {"name": "walked"},
    ("POST", "/v1/smiths/{smith_id}/tokens"): {"subject": "walk"},
    ("PUT", "/v1/smiths/{smith_id}/memory/{key}"): {"value": "v"},
    ("POST", "/v1/smiths/{smith_id}/schedules"): {"name": "walk", "cron": "0 9 * * *", "input": MESSAGE},
    ("PATCH", "/v1/smiths/{smith_id}/schedules/{schedule_id}"): {"enabled": False},
    ("POST", "/v1/smiths/{smith_id}/runs"): {"input": MESSAGE},
    ("POST", "/v1/runs/{run_id}/submit"): {"decision": "approve"},
    ("POST", "/v1/deployments"): {"target": {"type": "smith", "id": "{smith_id}"}, "kind": "mcp"},
    ("PATCH", "/v1/deployments/{deployment_id}"): {"provider_metadata": {"walk": 1}},
    ("POST", "/v1/deployments/{deployment_id}/tokens"): {"subject": "walk"},
    ("PUT", "/v1/tenant/telegram"): {"bot_token": FAKE_TOKEN},
    ("PUT", "/v1/tenant/slack"): {"client_id": "1234.5678", "client_secret": "walk-secret-1",
                                  "signing_secret": "walk-signing-1"},
    ("PUT", "/v1/tenant/whatsapp"): {"phone_number_id": "106540352242922", "access_token": "EAAGwalkAccessToken0000000",
                                     "app_secret": "walk0secret0123456789abcdef"},
    ("PUT", "/v1/tenant/email"): {"account_id": "0" * 32, "api_token": "walk-cloudflare-token-0123",
                                  "domain": "walk.example"},
    ("PUT", "/v1/tenant/linkedin"): {"client_id": "86walkClient", "client_secret": "walk-linkedin-secret",
                                     "page_urn": "urn:li:organization:1"},
    ("PATCH", "/v1/tenant/linkedin"): {"messaging_enabled": False},
    ("POST", "/v1/tokens"): {"subject": "walk"},
}
# What a smith token may call without naming a resource (the answer is filtered to its own smith).
SMITH_USABLE = {("GET", "/v1/smiths"), ("GET", "/v1/runs"), ("GET", "/v1/deployments"), ("GET", "/v1/events"),
                ("POST", "/v1/deployments"), ("GET", "/v1/events/stream")}
ENDLESS = {("GET", "/v1/events/stream")}  # a feed that never ends for a caller it accepts


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, tg: FakeTelegram) -> Settings:
    return dataclasses.replace(settings, telegram_api_url=tg.url, public_url="https://bots.example.com")


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


@pytest.fixture
async def world(api: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    """The victim smith's resources (the path parameters) and a token of another smith."""
    admin = bearer(admin_token)
    agent = await _ok(await api.post("/v1/agents", json={"name": "A"}, headers=admin))
    victim = await _ok(await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "victim"}, headers=admin))
    other = await _ok(await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "other"}, headers=admin))
    foreign = await _ok(await api.post(f"/v1/smiths/{other['id']}/tokens", json={"subject": "mallory"}, headers=admin))
    victims_token = await _ok(await api.post(f"/v1/smiths/{victim['id']}/tokens", json={}, headers=admin))
    await _ok(await api.put(f"/v1/smiths/{victim['id']}/memory/note", json={"value": "secret"}, headers=admin))
    schedule = await _ok(await api.post(f"/v1/smiths/{victim['id']}/schedules", headers=admin,
                                        json={"name": "daily", "cron": "0 9 * * *", "input": MESSAGE}))
    run = await _ok(await api.post(f"/v1/smiths/{victim['id']}/runs", json={"input": MESSAGE}, headers=admin))
    await _ok(await api.post(f"/v1/runs/{run['id']}/cancel", headers=admin))  # so its stream ends
    deployment = await _ok(await api.post("/v1/deployments", headers=admin,
                                          json={"target": {"type": "smith", "id": victim["id"]}, "kind": "mcp"}))
    return {"agent_id": agent["id"], "smith_id": victim["id"], "schedule_id": schedule["id"], "run_id": run["id"],
            "deployment_id": deployment["id"], "token_id": victims_token["id"], "key": "note",
            "delivery_id": "out_00000000000000000000000000", "foreign": foreign["token"]}


def _operations(api_app: Any) -> list[tuple[str, str, bool]]:
    doc = api_app.openapi()
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if {"webhooks", "browser"} & set(operation.get("tags", [])):
                continue  # providers' endpoints (verified by signature) and pages a browser follows: no token
            found.append((method.upper(), path, "requestBody" in operation))
    return sorted(found, key=lambda op: (op[0] == "DELETE", -len(op[1])))  # deletes last, deepest first


def _fill(value: Any, world: dict[str, str]) -> Any:
    text = json.dumps(value).replace("{agent_id}", world["agent_id"]).replace("{smith_id}", world["smith_id"])
    return json.loads(text)


async def _call(api: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], body: Any) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": {**headers, "Content-Type": "application/json"}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    async with asyncio.timeout(20):
        return await api.request(method, url, **kwargs)


async def test_every_operation_checks_scopes_before_bodies(api: httpx.AsyncClient, admin_token: str,
                                                           world: dict[str, str]) -> None:  # API-2
    operations = _operations(api._transport.app)  # type: ignore[attr-defined]
    assert len(operations) > 40
    missing = [(m, p) for m, p, has_body in operations if has_body and (m, p) not in VALID]
    assert not missing, f"add a valid body for {missing}"
    problems: list[str] = []

    def expect(ok: bool, who: str, method: str, path: str, what: str, response: httpx.Response) -> None:
        if not ok:
            problems.append(f"{who} {method} {path} [{what}] -> {response.status_code} {response.text[:160]}")

    foreign = bearer(world["foreign"])
    for method, path, has_body in operations:
        url = path.format(**world)
        bodies: dict[str, Any] = {"none": None}
        if has_body:
            bodies = {"valid": _fill(VALID[(method, path)], world), "empty": None, "undecodable": b'{"x": '}
        for what, body in bodies.items():
            anonymous = await _call(api, method, url, {"IC-Api-Version": "2026-05-01"}, body)
            expect(anonymous.status_code == 401, "no token", method, path, what, anonymous)
            if (method, path) in ENDLESS:
                continue
            response = await _call(api, method, url, foreign, body)
            if (method, path) in SMITH_USABLE:
                refused_by_body = what == "valid" and method == "POST"  # it names the victim smith
                expect(response.status_code == 403 if refused_by_body else response.status_code not in (401, 500),
                       "foreign smith", method, path, what, response)
            else:
                expect(response.status_code == 403, "foreign smith", method, path, what, response)

    admin = bearer(admin_token)
    with_bodies = [op for op in operations if op[2]]
    for method, path, _ in with_bodies:  # empty and undecodable bodies first: they change nothing
        for body in (None, b'{"x": '):
            response = await _call(api, method, path.format(**world), admin, body)
            expect(response.status_code in (200, 201, 202, 400, 422), "admin", method, path, repr(body), response)
    for method, path, has_body in operations:
        if (method, path) in ENDLESS:
            continue
        body = _fill(VALID[(method, path)], world) if has_body else None
        response = await _call(api, method, path.format(**world), admin, body)
        expect(response.status_code not in (401, 403) and response.status_code < 500, "admin", method, path, "valid",
               response)
    assert not problems, "\n".join(problems)
