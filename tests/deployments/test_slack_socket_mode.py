"""Slack behind NAT (compass row B4): with an app-level token and a public URL Slack cannot reach, the
leader takes events and interactions over Socket Mode into the same inbound path as webhooks."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.deployments.slack_helpers import (  # noqa: F401
    APP,
    follow_install,
    install_link,
    settings_with_slack,
    slack_fixture,
    smith,
    texts_in,
)
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack

DM = fake_slack.DM_CHANNEL_ID




@pytest.fixture
def public_url() -> str:
    return "http://127.0.0.1:9"  # a laptop: Slack cannot call it




async def test_events_arrive_over_socket_mode_and_are_acked_after_storing(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-2 behind NAT, B4
    refused = await api.put("/v1/tenant/slack", json={**APP, "app_token": "xapp-1-A0-0-unknown"},
                            headers=bearer(admin_token))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_app_token"
    view = (await api.put("/v1/tenant/slack", json={**APP, "app_token": fake_slack.APP_TOKEN},
                          headers=bearer(admin_token))).json()
    assert view["mode"] == "socket_mode" and fake_slack.APP_TOKEN not in str(view)
    assert any("Socket Mode" in step for step in view["steps"])
    smith_id = await smith(api, admin_token)
    link = await install_link(api, admin_token, smith_id)
    assert "Slack connected" in (await follow_install(api, link["install_url"])).text

    await wait_until(lambda: slack.socket_connected, "the socket mode connection", wait_s=20)
    envelope = fake_slack.event_envelope(fake_slack.message_event("hello over the socket"))
    # Delivered as Slack delivers: again, to the new connection, if the receiver reconnects meanwhile (it
    # restarts when the install changes the integration).
    await slack.deliver_socket("events_api", envelope)
    await wait_until(lambda: "You said: hello over the socket" in texts_in(slack, DM), "the reply")
    # Slack resends an envelope it thinks was lost: the event id dedupes it.
    again = await slack.push_socket("events_api", envelope, retry_attempt=1, retry_reason="timeout")
    await slack.wait_socket_ack(again, timeout=15)
    runs = (await api.get("/v1/runs", headers=bearer(admin_token))).json()["data"]
    assert len(runs) == 1
