"""Model endpoints (issue 13 §3): which key goes where, which base URLs are allowed, who reads
upstream error bodies. Two local fake Chat Completions servers stand for the operator's endpoint
(IC_MODEL_BASE_URL) and an agent's own one."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from app.services.background import background
from app.services.mcp import result_of
from app.services.runtime import Runtime
from app.settings import Settings
from jobs.llm import ModelConfig, build_provider
from jobs.runner import RunWorkers
from models import Agent, Run
from tests.conftest import bearer
from tests.fakes.openai import FakeOpenAI, run_fake_openai, status, text
from tests.runs.conftest import make_smith, start_run, wait_run

DEFAULT_KEY = "sk-operator-default-key-0001"
AGENT_KEY = "sk-agent-own-key-for-its-host-7788"


@pytest.fixture
async def operator() -> AsyncIterator[FakeOpenAI]:
    async with run_fake_openai() as server:
        yield server


@pytest.fixture
async def elsewhere() -> AsyncIterator[FakeOpenAI]:
    async with run_fake_openai() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, operator: FakeOpenAI) -> Settings:
    return dataclasses.replace(settings, model_provider="openai", model_base_url=operator.url,
                               model_api_key=DEFAULT_KEY, model="gpt-test")


def _keys_seen(fake: FakeOpenAI) -> list[str | None]:
    return [r["authorization"] for r in fake.requests]


async def test_the_default_key_goes_only_to_the_operators_url(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers, operator: FakeOpenAI, elsewhere: FakeOpenAI
) -> None:
    _, default_smith = await make_smith(api, admin_token)
    _, own_url_smith = await make_smith(api, admin_token, model={"base_url": elsewhere.url})
    for smith_id in (default_smith, own_url_smith):
        run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hi"))["id"])
        assert run["status"] == "completed", run
    assert _keys_seen(operator) == [f"Bearer {DEFAULT_KEY}"]
    assert _keys_seen(elsewhere) == [None]  # the agent's own host never gets the operator's key


async def test_an_agents_own_key_is_stored_sealed_sent_to_its_host_and_never_shown(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers, runtime: Runtime,
    operator: FakeOpenAI, elsewhere: FakeOpenAI,
) -> None:
    agent_id, smith_id = await make_smith(api, admin_token, model={"base_url": elsewhere.url, "api_key": AGENT_KEY})
    shown = await api.get(f"/v1/agents/{agent_id}", headers=bearer(admin_token))
    assert shown.json()["model_api_key"] == {"set": True, "last4": "7788"}
    assert AGENT_KEY not in shown.text and "api_key" not in shown.json()["model"]
    async with runtime.transaction() as session:
        stored = await session.get(Agent, agent_id)
        assert stored is not None and stored.model_api_key_ciphertext
        assert AGENT_KEY not in stored.model_api_key_ciphertext and "api_key" not in stored.model
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hi"))["id"])
    assert run["status"] == "completed"
    assert _keys_seen(elsewhere) == [f"Bearer {AGENT_KEY}"] and operator.requests == []

    # Sealed to its own row: the ciphertext copied onto another agent does not open there.
    other_id, other_smith = await make_smith(api, admin_token, model={"base_url": elsewhere.url})
    async with runtime.transaction() as session:
        await session.execute(update(Agent).where(Agent.id == other_id)
                              .values(model_api_key_ciphertext=stored.model_api_key_ciphertext))
    assert (await api.get(f"/v1/agents/{other_id}", headers=bearer(admin_token))).json()["model_api_key"] == {
        "set": True, "last4": ""}
    failed = await wait_run(api, admin_token, (await start_run(api, admin_token, other_smith, "hi"))["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "model_config"
    assert len(elsewhere.requests) == 1

    # A key given for one host does not follow the URL to another; "" removes it.
    moved = await api.patch(f"/v1/agents/{agent_id}", json={"model": {"base_url": operator.url + "/"}},
                            headers=bearer(admin_token))
    assert moved.json()["model_api_key"] == {"set": False, "last4": ""}
    again = await api.patch(f"/v1/agents/{agent_id}", json={"model": {"base_url": elsewhere.url, "api_key": AGENT_KEY}},
                            headers=bearer(admin_token))
    assert again.json()["model_api_key"]["set"] is True
    cleared = await api.patch(f"/v1/agents/{agent_id}", json={"model": {"base_url": elsewhere.url, "api_key": ""}},
                              headers=bearer(admin_token))
    assert cleared.json()["model_api_key"] == {"set": False, "last4": ""}


async def test_upstream_error_bodies_reach_admins_and_the_log_not_smith_tokens_or_mcp(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers, runtime: Runtime, operator: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:  # API-2, MCP-2, RUN-1
    operator.push(status(400))  # the fake answers {"error": {"message": "scripted failure"}}
    _, smith_id = await make_smith(api, admin_token)
    smith_token = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={},
                                  headers=bearer(admin_token))).json()["token"]
    run_id = (await start_run(api, smith_token, smith_id, "hi"))["id"]
    as_admin = await wait_run(api, admin_token, run_id)
    assert as_admin["error"]["code"] == "model_rejected"
    assert "scripted failure" in as_admin["error"]["detail"]
    assert "scripted failure" in caplog.text

    as_smith = await api.get(f"/v1/runs/{run_id}", headers=bearer(smith_token))
    assert as_smith.json()["error"]["code"] == "model_rejected"
    assert "scripted failure" not in as_smith.text and "detail" not in as_smith.json()["error"]
    listed = await api.get(f"/v1/runs?smith_id={smith_id}", headers=bearer(smith_token))
    assert run_id in listed.text and "scripted failure" not in listed.text
    for path in (f"/v1/runs/{run_id}/events", "/v1/events"):
        seen = await api.get(path, headers=bearer(smith_token))
        assert seen.status_code == 200 and "scripted failure" not in seen.text
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        mcp_text = result_of(run).text()
    assert "scripted failure" not in mcp_text and "failed" in mcp_text


@pytest.mark.parametrize("url", [
    "http://api.example.com/v1",  # not https
    "https://localhost:8443/v1",  # a name that resolves to loopback
    "https://127.0.0.1/v1",
    "https://10.1.2.3/v1",
    "https://192.168.0.10/v1",
    "https://169.254.169.254/latest",  # cloud metadata (link-local)
    "https://100.64.0.1/v1",  # carrier-grade NAT
    "https://[::1]/v1",
    "https://[fd12:3456::1]/v1",  # IPv6 unique-local
    "https://[fe80::1]/v1",
    "https://[::ffff:10.0.0.1]/v1",  # IPv4-mapped private
    "https://user:pw@93.184.216.34/v1",
    "https://no-such-host.invalid/v1",
])
async def test_private_or_plain_base_urls_are_refused_at_save(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime, url: str
) -> None:
    runtime.settings = dataclasses.replace(runtime.settings, allow_private_urls=False)
    created = await api.post("/v1/agents", json={"name": "A", "model": {"base_url": url}},
                             headers=bearer(admin_token))
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "model_url_not_allowed"
    assert created.json()["error"]["field"] == "model.base_url"
    ok = await api.post("/v1/agents", json={"name": "A", "model": {"base_url": "https://93.184.216.34/v1"}},
                        headers=bearer(admin_token))
    assert ok.status_code == 201, ok.text
    patched = await api.patch(f"/v1/agents/{ok.json()['id']}", json={"model": {"base_url": url}},
                              headers=bearer(admin_token))
    assert patched.json()["error"]["code"] == "model_url_not_allowed"


async def test_the_url_is_checked_again_when_called(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime, elsewhere: FakeOpenAI
) -> None:
    # Saved while allowed (as if its name resolved publicly then); the workers run with the check on.
    _, smith_id = await make_smith(api, admin_token, model={"base_url": elsewhere.url})
    elsewhere.push(text("should not be asked"))
    strict = dataclasses.replace(runtime, settings=dataclasses.replace(runtime.settings, allow_private_urls=False))
    async with background(strict, workers=1, poll_interval_s=0.05, lease_seconds=30, polling=False,
                          scheduler=False):
        run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hi"))["id"])
    assert run["status"] == "failed" and run["error"]["code"] == "model_url_not_allowed"
    assert elsewhere.requests == []


async def test_a_checked_call_connects_to_the_vetted_address_not_a_fresh_lookup(operator: FakeOpenAI) -> None:
    # DNS rebinding: the name is resolved once, by the check, and the call connects to that address.
    # "model.invalid" resolves nowhere, so the request can only arrive through the pinned address.
    port = httpx.URL(operator.url).port
    config = ModelConfig(provider="openai", base_url=f"http://model.invalid:{port}/v1",
                         connect_address="127.0.0.1", retries=0)
    async with httpx.AsyncClient() as http:
        reply = await build_provider(config, http).complete([{"role": "user", "content": "hi"}], [])
    assert reply.text == "(script ended)"
    assert operator.requests[0]["host"] == f"model.invalid:{port}"  # the server is still named
