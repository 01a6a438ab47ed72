"""Quotas (issue 13 §6): runs per token and per chat sender per minute, provider_metadata's size,
memory entries per smith and value size (through the API and the agent's tool alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from app.services.background import background
from app.services.inbound import SLOW_DOWN
from app.services.quotas import SlidingWindow
from app.services.runtime import Runtime
from app.settings import Settings
from models import InboundDelivery, MemoryEntry, Run
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, texts_to, wait_until
from tests.fakes.telegram import FakeTelegram, private_message, run_fake_telegram
from tests.runs.conftest import make_smith, start_run, wait_run


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, tg: FakeTelegram) -> Settings:
    return dataclasses.replace(settings, telegram_api_url=tg.url, public_url="https://bots.example.com",
                               runs_per_sender_per_minute=3, runs_per_token_per_minute=5,
                               memory_max_entries=3, memory_max_value_chars=50, provider_metadata_max_bytes=200)


def test_the_sliding_window_forgets_what_left_it() -> None:
    now = [0.0]
    window = SlidingWindow(window_s=60, clock=lambda: now[0])
    assert [window.allow(("a",), 2) for _ in range(3)] == [True, True, False]
    assert window.allow(("b",), 2)  # per key
    now[0] = 59.9
    assert not window.allow(("a",), 2)
    now[0] = 60.1  # the first two left the window
    assert window.allow(("a",), 2) and window.allow(("a",), 2) and not window.allow(("a",), 2)
    assert window.allow(("a",), 0)  # 0 = no limit


async def test_runs_per_token_per_minute(api: httpx.AsyncClient, admin_token: str) -> None:
    _, smith_id = await make_smith(api, admin_token)
    smith_token = (await api.post(f"/v1/smiths/{smith_id}/tokens", json={},
                                  headers=bearer(admin_token))).json()["token"]
    body = {"input": [{"role": "user", "content": "hi"}]}
    answers = [await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(smith_token))
               for _ in range(7)]
    assert [a.status_code for a in answers] == [202] * 5 + [429] * 2
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    # Another token has its own allowance; what was refused stored nothing.
    assert (await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(admin_token))).status_code == 202
    listed = await api.get(f"/v1/runs?smith_id={smith_id}", headers=bearer(admin_token))
    assert len(listed.json()["data"]) == 6


async def test_a_chat_sender_over_the_limit_starts_nothing_and_hears_it_once(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    created = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                      "kind": "telegram"}, headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    async with background(runtime, workers=2, poll_interval_s=0.05, lease_seconds=30, scheduler=False):
        for i in range(7):
            answer = await post_update(api, tg, private_message(f"m{i}", user_id=4242, update_id=100 + i))
            assert answer.status_code == 200  # the provider must not retry a refused message
        await post_update(api, tg, private_message("hello", user_id=9001, first_name="Sam", update_id=300))
        await wait_until(lambda: "You said: hello" in texts_to(tg, 9001), "the other sender's reply")
        await wait_until(lambda: len(texts_to(tg, 4242)) >= 4, "three replies and the notice")
        async with runtime.transaction() as session:
            runs = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
            stored = (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one()
    assert runs == 4 and stored == 4  # three of 4242's, one of 9001's
    sent = texts_to(tg, 4242)
    assert sent.count(SLOW_DOWN) == 1
    assert sorted(t for t in sent if t != SLOW_DOWN) == ["You said: m0", "You said: m1", "You said: m2"]


async def test_provider_metadata_is_capped_on_create_and_patch(api: httpx.AsyncClient, admin_token: str) -> None:
    agent_id, _ = await make_smith(api, admin_token)
    target = {"type": "agent", "id": agent_id}
    big = {"notes": "x" * 300}
    refused = await api.post("/v1/deployments", json={"target": target, "kind": "mcp", "provider_metadata": big},
                             headers=bearer(admin_token))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "provider_metadata_too_large"
    assert refused.json()["error"]["field"] == "provider_metadata"
    created = await api.post("/v1/deployments", json={"target": target, "kind": "mcp",
                                                      "provider_metadata": {"notes": "small"}},
                             headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    patched = await api.patch(f"/v1/deployments/{created.json()['id']}", json={"provider_metadata": big},
                              headers=bearer(admin_token))
    assert patched.status_code == 422 and patched.json()["error"]["code"] == "provider_metadata_too_large"


async def test_memory_caps_and_pages_through_the_api(api: httpx.AsyncClient, admin_token: str) -> None:
    _, smith_id = await make_smith(api, admin_token)
    base = f"/v1/smiths/{smith_id}/memory"
    too_large = await api.put(f"{base}/big", json={"value": "v" * 51}, headers=bearer(admin_token))
    assert too_large.status_code == 422 and too_large.json()["error"]["code"] == "memory_value_too_large"
    for key in ("a", "b", "c"):
        assert (await api.put(f"{base}/{key}", json={"value": key}, headers=bearer(admin_token))).status_code == 200
    full = await api.put(f"{base}/d", json={"value": "d"}, headers=bearer(admin_token))
    assert full.status_code == 409 and full.json()["error"]["code"] == "memory_full"
    assert (await api.put(f"{base}/a", json={"value": "again"}, headers=bearer(admin_token))).status_code == 200
    first = (await api.get(f"{base}?limit=2", headers=bearer(admin_token))).json()
    rest = (await api.get(f"{base}?limit=2&cursor={first['next_cursor']}", headers=bearer(admin_token))).json()
    assert [e["key"] for e in first["data"]] == ["c", "b"] and rest["next_cursor"] is None
    assert [e["key"] for e in rest["data"]] == ["a"]


async def test_memory_caps_hold_for_the_agents_tool(api: httpx.AsyncClient, admin_token: str,
                                                    runtime: Runtime) -> None:
    _, smith_id = await make_smith(api, admin_token)
    async with background(runtime, workers=1, poll_interval_s=0.05, lease_seconds=30, polling=False,
                          scheduler=False, delivery=False):
        replies = []
        for command in ("/remember big = " + "v" * 60, "/remember a = 1", "/remember b = 2",
                        "/remember c = 3", "/remember d = 4"):
            run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, command))["id"])
            replies.append(run["output"]["text"])
    assert "memory_value_too_large" in replies[0]
    assert replies[1:4] == ["Remembered a.", "Remembered b.", "Remembered c."]
    assert "memory_full" in replies[4]
    async with runtime.transaction() as session:
        keys = (await session.execute(select(MemoryEntry.key).where(MemoryEntry.smith_id == smith_id))).scalars()
        assert sorted(keys) == ["a", "b", "c"]
