"""Slack's app factory block (issue 17 §1, SL-1): the app configuration token and its refresh token, stored
encrypted, rotated by the leader before the 12-hour expiry with the new refresh token stored alongside,
and a refused rotation shown, never silent. The /v1 API in-process against the fake Slack."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from app.services.channel_hub import get_hub
from app.services.credential_renewal import Renewals
from app.services.integrations import find_integration, open_secrets
from app.services.runtime import Runtime
from models import Integration, Project
from models.types import utcnow
from tests.conftest import bearer
from tests.deployments.slack_helpers import APP, settings_with_slack, slack_fixture  # noqa: F401
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack


async def stored(runtime: Runtime) -> tuple[Integration, dict[str, str]]:
    async with runtime.transaction() as session:
        project = (await session.execute(Project.__table__.select())).first()
        assert project is not None
        integration = await find_integration(session, project_id=project.id, kind="slack")
        assert integration is not None
        return integration, open_secrets(runtime.secrets, integration)


async def renew(runtime: Runtime, renewals: Renewals) -> None:
    """One pass of the leader's upkeep for the Slack integration (app.services.polling does it every few s)."""
    integration, _ = await stored(runtime)
    async with runtime.read() as session:
        row = await session.get(Integration, integration.id)
        assert row is not None
        channel = await get_hub(runtime).for_integration(row, session)
    await renewals.renew_if_due(runtime, integration.id, channel)


async def test_connecting_rotates_the_refresh_token_and_stores_the_new_pair(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # SL-1
    token, refresh, _ = slack.issue_config_token()
    answer = await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": refresh},
                           headers=bearer(admin_token))
    assert answer.status_code == 200, answer.text
    view = answer.json()
    expires = datetime.fromisoformat(view["config_token_expires_at"])
    assert timedelta(hours=11) < expires - utcnow() <= timedelta(hours=12, minutes=1)
    assert view["factory_team_id"] == fake_slack.TEAM_ID and view["config_rotated_at"]
    assert refresh not in json.dumps(view) and token not in json.dumps(view)
    _, secrets = await stored(runtime)
    assert secrets["config_refresh_token"] != refresh  # the pasted one is spent: Slack issued a new one
    assert secrets["config_refresh_token"] in slack.refresh_tokens and secrets["config_token"] in slack.config_tokens
    integration, _ = await stored(runtime)
    assert secrets["config_refresh_token"] not in integration.secrets_ciphertext  # sealed

    spent = await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": refresh},
                          headers=bearer(admin_token))
    assert spent.status_code == 422 and spent.json()["error"]["code"] == "slack_factory_token_invalid"
    assert spent.json()["error"]["field"] == "config_refresh_token"
    _, after = await stored(runtime)
    assert after == secrets  # nothing half-written


async def test_the_leader_rotates_before_the_expiry(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # SL-1: rotation with the new refresh token stored in the same transaction
    _, refresh, _ = slack.issue_config_token()
    assert (await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": refresh},
                          headers=bearer(admin_token))).status_code == 200
    renewals = Renewals()
    before, secrets = await stored(runtime)
    await renew(runtime, renewals)  # 12 h left: not due
    assert (await stored(runtime))[1] == secrets

    async with runtime.transaction() as session:  # an hour before the expiry (the clock cannot be waited for)
        row = await session.get(Integration, before.id)
        assert row is not None
        row.public = {**row.public, "config_token_expires_at": (utcnow() + timedelta(hours=1)).isoformat()}
        row.updated_at = utcnow()
    await renew(runtime, renewals)
    after, renewed = await stored(runtime)
    assert renewed["config_token"] != secrets["config_token"]
    assert renewed["config_refresh_token"] != secrets["config_refresh_token"]
    assert renewed["config_refresh_token"] in slack.refresh_tokens
    assert secrets["config_refresh_token"] not in slack.refresh_tokens  # the old one was traded in
    assert datetime.fromisoformat(after.public["config_token_expires_at"]) - utcnow() > timedelta(hours=11)
    events = (await api.get("/v1/events", params={"type": "integration.credentials_renewed"},
                            headers=bearer(admin_token))).json()["data"]
    assert [e["data"]["kind"] for e in events] == ["slack"]
    assert renewed["config_token"] not in json.dumps(events)


async def test_a_refused_rotation_shows_and_fires_an_event_once(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # SL-1: "a failed rotation shows in the console and as an integration.error event, never silently"
    _, refresh, _ = slack.issue_config_token()
    assert (await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": refresh},
                          headers=bearer(admin_token))).status_code == 200
    integration, secrets = await stored(runtime)
    async with runtime.transaction() as session:
        row = await session.get(Integration, integration.id)
        assert row is not None
        row.public = {**row.public, "config_token_expires_at": (utcnow() + timedelta(minutes=30)).isoformat()}
        row.updated_at = utcnow()
    slack.revoke_refresh_token(secrets["config_refresh_token"])
    renewals = Renewals()
    await renew(runtime, renewals)
    calls = len(slack.calls_to("tooling.tokens.rotate"))
    await renew(runtime, renewals)  # backing off: Slack is not asked again at once
    assert len(slack.calls_to("tooling.tokens.rotate")) == calls
    view = (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).json()
    assert view["credentials_error"].startswith("slack_factory_token_invalid: Slack refused")
    assert view["status"] == "connected"  # the shared app still works: only the factory is stuck
    events = (await api.get("/v1/events", params={"type": "integration.error"}, headers=bearer(admin_token))).json()
    assert [e["data"]["error"] for e in events["data"]] == [view["credentials_error"]]
    assert (await stored(runtime))[1] == secrets  # nothing half-written

    # A new configuration token pasted in clears the error.
    _, fresh, _ = slack.issue_config_token()
    again = await api.put("/v1/tenant/slack", json={**APP, "config_refresh_token": fresh}, headers=bearer(admin_token))
    assert again.status_code == 200 and not again.json().get("credentials_error")
