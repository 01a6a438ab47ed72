"""A person connects Slack from the card its declarations build (manifest, URLs, form), then adds a
smith to a workspace with "Add to Slack" through Slack's consent page (issue 14: CON-4, SL-1, SL-2)."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.slack import (
    CLIENT_ID,
    CLIENT_SECRET,
    DM_CHANNEL_ID,
    INSTALLER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    TEAM_NAME,
    FakeSlack,
    block_actions_payload,
    event_envelope,
    interaction_body,
    message_event,
    sign,
)
from tests.integration.conftest import Server, sign_in_console, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SLACK_BODY = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "signing_secret": SIGNING_SECRET}


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {server.admin_token}"},
                        timeout=30)


def _smith(server: Server, name: str, **agent_fields: object) -> dict[str, str]:
    with _api(server) as api:
        agent = api.post("/agents", json={"name": f"{name} agent", **agent_fields}).json()
        return dict(api.post("/smiths", json={"agent_id": agent["id"], "name": name}).json())


def _post_signed(server: Server, body: bytes, content_type: str) -> None:
    """What Slack does: a signed POST to the events and interactivity URL."""
    answer = httpx.post(f"{server.url}/v1/slack/webhook/default", content=body, timeout=30,
                        headers={"content-type": content_type, **sign(body)})
    assert answer.status_code == 200, answer.text




def _slack_configured(server: Server) -> bool:
    with _api(server) as api:
        return bool(api.get("/tenant/slack").json()["configured"])


def test_connect_slack_from_the_manifest(server: Server, page: Page) -> None:  # CON-4, SL-1
    if _slack_configured(server):  # this module's other test may have run first on this server
        with _api(server) as api:
            assert api.delete("/tenant/slack").status_code == 204
    smith = _smith(server, "Slack PA")
    sign_in_console(page, server)

    # Before Slack is connected, a smith's Deployments tab says where to connect it.
    page.goto(f"{server.url}/smiths/{smith['id']}")
    notice = page.locator("#connect-slack-first")
    expect(notice).to_contain_text("Connect Slack first.")
    expect(page.locator("#create-slack-link")).to_have_count(0)
    notice.get_by_role("link", name="Settings → Integrations").click()

    # The Slack card: not connected, the one-line instruction, the manifest and the URLs to give Slack.
    card = page.locator("#slack-card")
    expect(card.get_by_text("Not connected", exact=True)).to_be_visible()
    expect(card.get_by_text("Create the app at api.slack.com/apps → From a manifest, then paste the Client ID, "
                            "Client Secret and Signing Secret below.")).to_be_visible()
    expect(card).to_contain_text(f"{server.url}/v1/slack/oauth/callback")
    expect(card).to_contain_text(f"{server.url}/v1/slack/webhook/")
    expect(card).to_contain_text('"display_information"')
    for kind in ("telegram", "whatsapp", "email", "linkedin"):  # every channel has its card, none is "coming soon"
        expect(page.locator(f"#{kind}-card")).to_be_visible()
    expect(page.get_by_text("coming soon")).to_have_count(0)

    # "Copy manifest" copies the manifest whose URLs point at this server.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    card.get_by_role("button", name="Copy manifest").click()
    expect(page.get_by_text("Manifest copied")).to_be_visible()
    manifest = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert manifest["oauth_config"]["redirect_urls"] == [f"{server.url}/v1/slack/oauth/callback"]
    assert manifest["settings"]["event_subscriptions"]["request_url"].startswith(f"{server.url}/v1/slack/webhook/")

    # A value that is not a Client ID is refused by the form, naming the field.
    expect(card.locator("#slack-client-secret")).to_have_attribute("type", "password")
    page.fill("#slack-client-id", "not a client id")
    page.fill("#slack-client-secret", CLIENT_SECRET)
    page.fill("#slack-signing-secret", SIGNING_SECRET)
    page.click("#connect-slack")
    expect(card.get_by_text("Client ID does not look right")).to_be_visible()

    page.fill("#slack-client-id", CLIENT_ID)
    page.fill("#slack-client-secret", CLIENT_SECRET)
    page.fill("#slack-signing-secret", SIGNING_SECRET)
    page.click("#connect-slack")
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.get_by_text(CLIENT_ID, exact=True)).to_be_visible()
    expect(card).to_contain_text(f"set, ends in …{SIGNING_SECRET[-4:]}")
    expect(card).to_contain_text("No workspace has installed the app yet")
    content = page.content()
    assert CLIENT_SECRET not in content and SIGNING_SECRET not in content
    with _api(server) as api:
        stored = api.get("/tenant/slack").json()
    assert stored["configured"] and stored["client_id"] == CLIENT_ID and stored["signing_secret"]["set"]


def test_add_a_smith_to_slack(server: Server, fake_slack: FakeSlack, page: Page) -> None:  # CON-2, SL-2
    if not _slack_configured(server):
        with _api(server) as api:
            assert api.put("/tenant/slack", json=SLACK_BODY).status_code == 200
    smith = _smith(server, "Slack helper", approval_required_tools=["memory_write"])
    sign_in_console(page, server)

    # The smith's Deployments tab makes a one-time install link, with a copy button and a QR code.
    page.goto(f"{server.url}/smiths/{smith['id']}")
    page.click("#create-slack-link")
    link = page.locator("#install-link")
    expect(link).to_contain_text(f"{server.url}/v1/slack/install/")
    expect(page.get_by_alt_text("QR code of the install link")).to_be_visible()
    expect(page.get_by_text("installs the app into a Slack workspace")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("slack"))).to_contain_text("pending")

    # Whoever opens it sees Slack's consent page, allows, and lands on our result page.
    page.goto(link.inner_text().strip())
    expect(page.get_by_text(f"wants to access {TEAM_NAME}").first).to_be_visible()
    page.click("#allow")
    expect(page.locator("#result")).to_have_text("Slack connected")
    expect(page.locator("#message")).to_contain_text(TEAM_NAME)
    assert fake_slack.calls_to("oauth.v2.access")

    # The smith now answers in the installer's DM in that workspace.
    page.goto(f"{server.url}/smiths/{smith['id']}")
    row = page.get_by_role("row", name=re.compile("slack"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(TEAM_NAME)
    expect(row).to_contain_text(DM_CHANNEL_ID)
    expect(page.get_by_text(f"installed in {TEAM_NAME}")).to_be_visible()
    page.get_by_role("link", name="Deployments", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("Slack helper"))).to_contain_text(TEAM_NAME)
    with _api(server) as api:
        bound = [d for d in api.get("/deployments", params={"target_id": smith["id"]}).json()["data"]
                 if d["kind"] == "slack"]
    assert [d["address"] for d in bound] == [f"{TEAM_ID}:{DM_CHANNEL_ID}"]

    # The installer DMs the smith, approves its tool call with the button, and sees the run.
    seen = len(fake_slack.posted)
    _post_signed(server, json.dumps(event_envelope(message_event("/remember plan = launch"))).encode(),
                 "application/json")
    prompt = wait_for(lambda: next((m for m in fake_slack.posted[seen:] if m.get("blocks")), None), "the prompt")
    approve = prompt["blocks"][-1]["elements"][0]["value"]
    _post_signed(server, interaction_body(block_actions_payload("ic_approve", approve, message_ts=prompt["ts"])),
                 "application/x-www-form-urlencoded")
    wait_for(lambda: any(m["text"] == "Remembered plan." for m in fake_slack.posted[seen:]), "the tool's reply")
    page.goto(f"{server.url}/runs?smith_id={smith['id']}")
    expect(page.get_by_role("row", name=re.compile("completed .*Remembered plan")).first).to_be_visible()

    # Settings → Integrations lists the workspace; disconnecting asks first, then forgets it.
    page.get_by_role("link", name="Integrations", exact=True).click()
    card = page.locator("#slack-card")
    expect(card.get_by_role("row", name=re.compile(TEAM_NAME))).to_contain_text(INSTALLER_ID)
    card.get_by_role("button", name="Disconnect").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Every workspace's installation is forgotten too.")
    dialog.get_by_role("button", name="Disconnect").click()
    expect(card.get_by_text("Not connected", exact=True)).to_be_visible()
    expect(card.get_by_role("row", name=re.compile(TEAM_NAME))).to_have_count(0)
    assert not _slack_configured(server)
