"""What the WhatsApp deployment tests share: the fake Graph API as a fixture, the settings pointing at it,
connecting the number, posting webhooks signed as Meta signs them, and binding Dana through a wa.me link."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from app.services.runtime import Runtime
from app.settings import Settings
from models import InboundDelivery, Run
from tests.conftest import bearer
from tests.deployments.slack_helpers import smith
from tests.fakes import whatsapp as fake_wa
from tests.fakes.whatsapp import FakeGraph, run_fake_graph

DANA, SAM = fake_wa.USER_WA_ID, fake_wa.OTHER_WA_ID
OWNER = f"whatsapp:{DANA}"
WEBHOOK = "/v1/whatsapp/webhook/default"
NUMBER = {"phone_number_id": fake_wa.PHONE_NUMBER_ID, "access_token": fake_wa.ACCESS_TOKEN,
          "app_secret": fake_wa.APP_SECRET}


# Fixtures under other names, so that a test module imports them without shadowing its parameters.
@pytest.fixture(name="graph")
async def graph_fixture() -> AsyncIterator[FakeGraph]:
    async with run_fake_graph() as fake:
        yield fake


@pytest.fixture(name="settings")
def settings_with_graph(settings: Settings, graph: FakeGraph) -> Settings:
    return dataclasses.replace(settings, graph_api_url=graph.url)


async def connect(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await api.put("/v1/tenant/whatsapp", json=NUMBER, headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def post(api: httpx.AsyncClient, payload: dict[str, Any] | bytes, *,
               secret: str = fake_wa.APP_SECRET) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else fake_wa.body(payload)
    return await api.post(WEBHOOK, content=raw, headers={"content-type": "application/json",
                                                         **fake_wa.sign(raw, secret)})


def texts_to(graph: FakeGraph, wa_id: str) -> list[str]:
    return [m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"]
            for m in graph.sent_to(wa_id)]


def prompts_to(graph: FakeGraph, wa_id: str) -> list[dict[str, Any]]:
    return [m for m in graph.sent_to(wa_id) if m["type"] == "interactive"
            and m["interactive"]["action"]["buttons"][0]["reply"]["title"] == "Approve"]


async def bound(api: httpx.AsyncClient, graph: FakeGraph, token: str, **agent: Any) -> dict[str, Any]:
    """Connect the number, make a smith and a wa.me link, and send the link's greeting from Dana's phone."""
    await connect(api, token)
    smith_id = await smith(api, token, **agent)
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": "whatsapp", "setup": {"mode": "start_token"}})
    assert created.status_code == 201, created.text
    [greeting] = parse_qs(urlsplit(created.json()["deep_link"]).query)["text"]
    assert (await post(api, fake_wa.text_message(greeting))).status_code == 200
    return {"smith_id": smith_id, "deployment": created.json(), "greeting": greeting}


async def count_stored_and_runs(runtime: Runtime) -> tuple[int, int]:
    async with runtime.transaction() as session:
        stored = (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one()
        runs = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
    return stored, runs


