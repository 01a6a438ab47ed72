"""Dedicated Slack apps (issue 17: SL-3, SL-6, REN-1, the cap, deletion, per-app signatures): the /v1 API
in-process, real workers and outbox, slack_sdk against the fake Slack's Manifest API and assistant methods."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from app.services.runtime import Runtime
from app.settings import Settings
from models import Deployment, Integration, ProviderApp
from tests.conftest import bearer
from tests.deployments.conftest import PUBLIC_HTTPS, wait_until
from tests.deployments.slack_helpers import (  # noqa: F401 (slack and settings are fixtures)
    APP,
    follow_install,
    settings_with_slack,
    slack_fixture,
    smith,
)
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack

TEAM = fake_slack.TEAM_ID
PROMPTS = ["Summarise my day", "Draft a reply to Sam"]
GREETING = "Hi Dana! What shall we do?"


async def connect_factory(api: httpx.AsyncClient, token: str, slack: FakeSlack) -> None:
    _, refresh, _ = slack.issue_config_token()
    answer = await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": refresh}, headers=bearer(token))
    assert answer.status_code == 200, answer.text


async def provision(api: httpx.AsyncClient, token: str, smith_id: str, name: str = "Dana's PA",
                    **metadata: Any) -> httpx.Response:
    return await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": "slack",
        "setup": {"mode": "provision", "display_name": name}, "provider_metadata": metadata})


def app_key(slack: FakeSlack, app_id: str) -> str:
    """Our key for the app, as its manifest's request URL names it (``?app=…``)."""
    url = slack.manifests[app_id]["settings"]["event_subscriptions"]["request_url"]
    return parse_qs(urlsplit(url).query)["app"][0]


def minted(slack: FakeSlack, app_id: str) -> fake_slack.SlackApp:
    return next(app for app in slack.apps.values() if app.app_id == app_id)


async def post_app_event(api: httpx.AsyncClient, slack: FakeSlack, app_id: str, event: dict[str, Any], *,
                         secret: str | None = None, key: str | None = None) -> httpx.Response:
    body = json.dumps(fake_slack.event_envelope(event, team_id=TEAM, api_app_id=app_id)).encode()
    signed = fake_slack.sign(body, secret or minted(slack, app_id).signing_secret)
    return await api.post(f"/v1/slack/webhook/default?app={key or app_key(slack, app_id)}", content=body,
                          headers={"content-type": "application/json", **signed})


async def installed_app(api: httpx.AsyncClient, token: str, slack: FakeSlack, **metadata: Any) -> dict[str, Any]:
    await connect_factory(api, token, slack)
    smith_id = await smith(api, token)
    created = await provision(api, token, smith_id, **metadata)
    assert created.status_code == 201, created.text
    page = await follow_install(api, created.json()["install_url"])
    assert page.status_code == 200 and "Slack connected" in page.text, page.text
    deployment = (await api.get(f"/v1/deployments/{created.json()['id']}", headers=bearer(token))).json()
    return {"smith_id": smith_id, "deployment": deployment, "app_id": created.json()["slack_app_id"]}


async def test_a_smith_gets_its_own_app_installed_and_talking(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-3, SL-1 (the fixed template, URLs forced to this server)
    await connect_factory(api, admin_token, slack)
    smith_id = await smith(api, admin_token)
    created = await provision(api, admin_token, smith_id)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["status"] == "pending" and view["install_url"] and view["slack_app_id"]
    app_id = view["slack_app_id"]
    manifest = slack.manifests[app_id]
    assert manifest["display_information"]["name"] == "Dana's PA"
    assert manifest["features"]["bot_user"]["display_name"] == "Dana's PA"
    key = app_key(slack, app_id)
    webhook = f"{PUBLIC_HTTPS}/v1/slack/webhook/default?app={key}"
    assert manifest["settings"]["event_subscriptions"]["request_url"] == webhook
    assert manifest["settings"]["interactivity"]["request_url"] == webhook
    assert manifest["oauth_config"]["redirect_urls"] == [f"{PUBLIC_HTTPS}/v1/slack/oauth/callback"]
    assert "assistant_view" not in manifest["features"]

    page = await follow_install(api, view["install_url"])
    assert page.status_code == 200 and "Slack connected" in page.text, page.text
    deployment = (await api.get(f"/v1/deployments/{view['id']}", headers=bearer(admin_token))).json()
    assert deployment["status"] == "active" and deployment["display_name"] == "Dana's PA"
    prefix, team, dm = deployment["address"].split(":")
    assert (prefix, team) == (app_id, TEAM) and dm.startswith("D") and dm != fake_slack.DM_CHANNEL_ID
    assert deployment["owner_identity"] == f"slack:{TEAM}:{fake_slack.INSTALLER_ID}"

    answer = await post_app_event(api, slack, app_id, fake_slack.message_event("hello own app", channel=dm))
    assert answer.status_code == 200, answer.text
    reply = await wait_until(lambda: next((m for m in slack.posted if m["channel"] == dm), None), "the app's reply")
    assert reply["text"] == "You said: hello own app"


async def test_each_app_is_verified_with_its_own_signing_secret(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # issue 17 §3
    first = await installed_app(api, admin_token, slack)
    second = await provision(api, admin_token, first["smith_id"], name="Second")
    assert second.status_code == 201, second.text
    a, b = first["app_id"], second.json()["slack_app_id"]
    dm = first["deployment"]["address"].rsplit(":", 1)[1]
    event = fake_slack.message_event("hi", channel=dm)
    assert (await post_app_event(api, slack, a, event)).status_code == 200  # its own secret, its own URL
    refused = [
        await post_app_event(api, slack, a, event, secret=minted(slack, b).signing_secret),  # another app's secret
        await post_app_event(api, slack, a, event, secret=fake_slack.SIGNING_SECRET),  # the shared app's secret
        await post_app_event(api, slack, a, event, key="app_0000000000NOSUCHAPP000000"),  # no such app
    ]
    body = json.dumps(fake_slack.event_envelope(event, team_id=TEAM, api_app_id=a)).encode()
    refused.append(await api.post("/v1/slack/webhook/default", content=body, headers={  # its secret, shared URL
        "content-type": "application/json", **fake_slack.sign(body, minted(slack, a).signing_secret)}))
    assert [r.status_code for r in refused] == [401, 401, 401, 401]
    assert all(r.json()["error"]["code"] == "invalid_signature" for r in refused)


async def test_the_assistant_pane_greets_shows_thinking_and_answers_in_the_thread(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-6
    made = await installed_app(api, admin_token, slack, assistant=True, greeting=GREETING,
                               suggested_prompts=[*PROMPTS, {"title": "Plan", "message": "Plan my week"}])
    app_id = made["app_id"]
    manifest = slack.manifests[app_id]
    assert "assistant:write" in manifest["oauth_config"]["scopes"]["bot"]
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert manifest["features"]["assistant_view"]["suggested_prompts"][0] == {"title": PROMPTS[0],
                                                                             "message": PROMPTS[0]}
    dm = made["deployment"]["address"].rsplit(":", 1)[1]
    thread = fake_slack.new_ts()
    opened = fake_slack.assistant_thread_started_event(channel=dm, thread_ts=thread)
    assert (await post_app_event(api, slack, app_id, opened)).status_code == 200
    prompts = await wait_until(lambda: next((c for c in slack.assistant_calls
                                             if c["method"] == "assistant.threads.setSuggestedPrompts"), None),
                               "the suggested prompts")
    assert prompts["title"] == GREETING and prompts["thread_ts"] == thread and prompts["channel_id"] == dm
    assert [p["title"] for p in prompts["prompts"]] == [*PROMPTS, "Plan"] and prompts["app_id"] == app_id

    asked = fake_slack.message_event(PROMPTS[0], channel=dm, thread_ts=thread)
    assert (await post_app_event(api, slack, app_id, asked)).status_code == 200
    reply = await wait_until(lambda: next((m for m in slack.posted if m["channel"] == dm), None), "the reply")
    assert reply["thread_ts"] == thread and reply["text"] == f"You said: {PROMPTS[0]}"
    statuses = await wait_until(lambda: (found := [c for c in slack.assistant_calls
                                                   if c["method"] == "assistant.threads.setStatus"])
                                and found[-1]["status"] == "" and found, "the status cleared")
    assert [s["status"] for s in statuses] == ["is thinking…", ""] and statuses[0]["thread_ts"] == thread
    assert statuses[0]["received_at"] < reply["received_at"] < statuses[1]["received_at"]


async def test_rename_updates_the_whole_manifest_and_only_dedicated_apps_rename(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack
) -> None:  # REN-1
    made = await installed_app(api, admin_token, slack, assistant=True, suggested_prompts=PROMPTS)
    deployment_id, app_id = made["deployment"]["id"], made["app_id"]
    renamed = await api.patch(f"/v1/deployments/{deployment_id}", json={"display_name": "Dana's Chief of Staff"},
                              headers=bearer(admin_token))
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "Dana's Chief of Staff"
    manifest = slack.manifests[app_id]
    assert manifest["display_information"]["name"] == "Dana's Chief of Staff"
    assert manifest["features"]["bot_user"]["display_name"] == "Dana's Chief of Staff"
    assert manifest["features"]["assistant_view"]["suggested_prompts"][1]["title"] == PROMPTS[1]  # the whole manifest
    assert manifest["settings"]["event_subscriptions"]["request_url"].endswith(f"?app={app_key(slack, app_id)}")

    too_long = await api.patch(f"/v1/deployments/{deployment_id}", json={"display_name": "x" * 36},
                               headers=bearer(admin_token))
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "display_name"
    assert slack.manifests[app_id]["display_information"]["name"] == "Dana's Chief of Staff"

    shared = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": made["smith_id"]}, "kind": "slack", "setup": {"mode": "oauth_install"}})
    refused = await api.patch(f"/v1/deployments/{shared.json()['id']}", json={"display_name": "Nope"},
                              headers=bearer(admin_token))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "rename_unsupported"


async def test_the_cap_counts_live_apps_and_deleting_the_last_deployment_deletes_the_app(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime, settings: Settings
) -> None:  # SL-3 cap (API-1), issue 17 §6
    runtime.settings = dataclasses.replace(settings, slack_app_cap=2)
    made = await installed_app(api, admin_token, slack)
    second = await provision(api, admin_token, made["smith_id"], name="Second")
    assert second.status_code == 201
    over = await provision(api, admin_token, made["smith_id"], name="Third")
    assert over.status_code == 429 and over.json()["error"]["code"] == "slack_app_cap_reached"
    assert len(slack.manifests) == 2

    kept = await api.delete(f"/v1/deployments/{second.json()['id']}?keep_app=true", headers=bearer(admin_token))
    assert kept.status_code == 204 and second.json()["slack_app_id"] in slack.manifests
    again = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": made["smith_id"]}, "kind": "slack",
        "setup": {"mode": "provision", "app_id": second.json()["slack_app_id"]}})
    assert again.status_code == 201 and again.json()["slack_app_id"] == second.json()["slack_app_id"]

    app_id = made["app_id"]
    bot_tokens = [t for t, held in slack.tokens.items() if held.app_id == app_id]
    assert bot_tokens
    gone = await api.delete(f"/v1/deployments/{made['deployment']['id']}", headers=bearer(admin_token))
    assert gone.status_code == 204 and app_id not in slack.manifests
    assert not [t for t in bot_tokens if t in slack.tokens]
    async with runtime.read() as session:
        rows = {row.external_id: row.status for row in (await session.execute(select(ProviderApp))).scalars()}
    assert rows == {app_id: "deleted", second.json()["slack_app_id"]: "live"}
    third = await provision(api, admin_token, made["smith_id"], name="Third")
    assert third.status_code == 201, third.text  # the cap counts live apps only


@pytest.mark.parametrize("name", ["", "x" * 36])
async def test_a_name_over_slacks_limits_is_refused_before_anything_is_made(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime, name: str
) -> None:  # issue 17, bad input
    await connect_factory(api, admin_token, slack)
    refused = await provision(api, admin_token, await smith(api, admin_token), name=name)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "setup.display_name"
    too_many = await provision(api, admin_token, await smith(api, admin_token), assistant=True,
                               suggested_prompts=["a", "b", "c", "d", "e"])
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "provider_metadata.suggested_prompts"
    assert slack.manifests == {}
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(ProviderApp))).scalar_one() == 0
        assert (await session.execute(select(func.count()).select_from(Deployment))).scalar_one() == 0


async def test_a_refused_configuration_token_creates_nothing_and_warns(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # issue 17, bad input: slack_factory_token_invalid
    await connect_factory(api, admin_token, slack)
    for token in list(slack.config_tokens):
        slack.expire_config_token(token)
    refused = await provision(api, admin_token, await smith(api, admin_token))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "slack_factory_token_invalid"
    assert slack.manifests == {}
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(ProviderApp))).scalar_one() == 0
        assert (await session.execute(select(func.count()).select_from(Deployment))).scalar_one() == 0
        integration = (await session.execute(select(Integration))).scalar_one()
        assert integration.public["credentials_error"].startswith("slack_factory_token_invalid")
    events = (await api.get("/v1/events", headers=bearer(admin_token))).json()["data"]
    assert any(e["type"] == "integration.error" for e in events)


async def test_metadata_and_names_cannot_point_the_app_elsewhere(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack
) -> None:  # SL-1: only the names are substituted; the URLs are always this server's
    await connect_factory(api, admin_token, slack)
    created = await provision(api, admin_token, await smith(api, admin_token), name="${owner_name} https://x.io",
                              assistant=True, suggested_prompts=["hi"], request_url="https://evil.example/hook",
                              events_url="https://evil.example/hook", redirect_urls=["https://evil.example/cb"])
    assert created.status_code == 201, created.text
    manifest = slack.manifests[created.json()["slack_app_id"]]
    assert manifest["display_information"]["name"] == "${owner_name} https://x.io"  # not substituted again
    assert "evil" not in json.dumps(manifest)
    assert manifest["settings"]["event_subscriptions"]["request_url"].startswith(f"{PUBLIC_HTTPS}/v1/slack/webhook/")


async def test_slacks_manifest_refusal_comes_back_with_its_pointer(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # issue 17 §8: invalid_manifest with its pointer, and the field it is about
    await connect_factory(api, admin_token, slack)
    slack.refuse_next_manifest = [{"message": "This name is reserved", "pointer": "/display_information/name"}]
    refused = await provision(api, admin_token, await smith(api, admin_token), name="Slackbot")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_manifest", refused.text
    assert refused.json()["error"]["field"] == "setup.display_name"
    assert refused.json()["error"]["errors"] == [{"message": "This name is reserved",
                                                  "pointer": "/display_information/name"}]
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(ProviderApp))).scalar_one() == 0


async def test_an_app_needs_a_public_https_address(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime, settings: Settings
) -> None:  # Slack only calls https request URLs: refused before asking Slack
    await connect_factory(api, admin_token, slack)
    runtime.settings = dataclasses.replace(settings, public_url="http://127.0.0.1:3000")
    refused = await provision(api, admin_token, await smith(api, admin_token))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "public_url_required"
    assert slack.manifests == {}
