"""Shared steps of the Slack end-to-end tests: connect the app, install it through the fake's consent,
post signed events and interactions as Slack does."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.settings import Settings
from tests.conftest import bearer
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack, run_fake_slack


# Fixtures under other names, so that a test module imports them without shadowing its parameters.
@pytest.fixture(name="slack")
async def slack_fixture() -> AsyncIterator[FakeSlack]:
    async with run_fake_slack(consent="allow") as fake:  # the person clicks Allow
        yield fake


@pytest.fixture(name="settings")
def settings_with_slack(settings: Settings, slack: FakeSlack) -> Settings:
    return dataclasses.replace(settings, slack_api_url=slack.api_url, slack_oauth_url=slack.authorize_url)


APP = {"client_id": fake_slack.CLIENT_ID, "client_secret": fake_slack.CLIENT_SECRET,
       "signing_secret": fake_slack.SIGNING_SECRET}


async def connect_app(api: httpx.AsyncClient, token: str, **extra: Any) -> dict[str, Any]:
    response = await api.put("/v1/tenant/slack", json={**APP, **extra}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def smith(api: httpx.AsyncClient, token: str, **agent: Any) -> str:
    created = (await api.post("/v1/agents", json={"name": "Concierge", **agent}, headers=bearer(token))).json()
    made = await api.post("/v1/smiths", json={"agent_id": created["id"], "name": "Dana's PA"}, headers=bearer(token))
    return str(made.json()["id"])


async def install_link(api: httpx.AsyncClient, token: str, smith_id: str, **setup: Any) -> dict[str, Any]:
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": "slack", "setup": {"mode": "oauth_install", **setup}})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def follow_install(api: httpx.AsyncClient, install_url: str) -> httpx.Response:
    """A browser following the link: our redirect (and its cookie), Slack's consent, our callback."""
    opened = await api.get(urlsplit(install_url).path)
    if opened.status_code != 302:
        return opened
    async with httpx.AsyncClient() as browser:  # the fake is a real server
        consent = await browser.get(opened.headers["location"])
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    return await api.get(f"{back.path}?{back.query}")


def callback_query(response: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["location"]).query)


async def installed(api: httpx.AsyncClient, token: str, **agent: Any) -> dict[str, Any]:
    """Connect the app, make a smith and install it: the smith talks to the installer's DM."""
    await connect_app(api, token)
    smith_id = await smith(api, token, **agent)
    link = await install_link(api, token, smith_id)
    page = await follow_install(api, link["install_url"])
    assert page.status_code == 200 and "Slack connected" in page.text, page.text
    deployment = (await api.get(f"/v1/deployments/{link['id']}", headers=bearer(token))).json()
    return {"smith_id": smith_id, "deployment": deployment, "link": link}


async def post_event(api: httpx.AsyncClient, event: dict[str, Any], *, team_id: str = fake_slack.TEAM_ID,
                     event_id: str | None = None, headers: dict[str, str] | None = None,
                     tenant: str = "default") -> httpx.Response:
    body = json.dumps(fake_slack.event_envelope(event, team_id=team_id, event_id=event_id)).encode()
    return await api.post(f"/v1/slack/webhook/{tenant}", content=body,
                          headers={"content-type": "application/json", **fake_slack.sign(body), **(headers or {})})


async def post_interaction(api: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    body = fake_slack.interaction_body(payload)
    return await api.post("/v1/slack/webhook/default", content=body,
                          headers={"content-type": "application/x-www-form-urlencoded", **fake_slack.sign(body)})


def texts_in(fake: FakeSlack, channel: str) -> list[str]:
    return [str(m.get("text") or "") for m in fake.posted if m.get("channel") == channel]
