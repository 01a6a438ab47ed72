"""Deployments on Slack, end to end (SL-1, SL-2, SL-4, SL-5, SL-8, APR-3, CHIP-4, ID-2, ID-3, EV-1):
the /v1 API in-process, real workers and outbox, slack_sdk talking to the fake Slack (tests/fakes/slack.py)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from app.services.runtime import Runtime
from models import InboundDelivery, Run
from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.deployments.slack_helpers import (  # noqa: F401 (slack and settings are fixtures)
    APP,
    callback_query,
    connect_app,
    follow_install,
    install_link,
    installed,
    post_event,
    post_interaction,
    settings_with_slack,
    slack_fixture,
    smith,
    texts_in,
)
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack

DM = fake_slack.DM_CHANNEL_ID
TEAM = fake_slack.TEAM_ID
OWNER = f"slack:{TEAM}:{fake_slack.INSTALLER_ID}"






async def test_connect_answers_urls_and_manifest_and_never_a_secret(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack
) -> None:  # SL-1, API-3
    before = (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).json()
    assert before["configured"] is False
    assert before["urls"]["events_url"] == "https://bots.example.com/v1/slack/webhook/default"
    assert before["urls"]["oauth_redirect_url"] == "https://bots.example.com/v1/slack/oauth/callback"
    manifest = before["guide"]["manifest"]
    assert manifest["settings"]["event_subscriptions"]["request_url"] == before["urls"]["events_url"]
    assert manifest["settings"]["interactivity"]["request_url"] == before["urls"]["interactivity_url"]
    assert manifest["oauth_config"]["redirect_urls"] == [before["urls"]["oauth_redirect_url"]]
    assert {"app_mention", "message.im", "app_uninstalled"} <= set(manifest["settings"]["event_subscriptions"]
                                                                   ["bot_events"])
    view = await connect_app(api, admin_token)
    assert view["configured"] and view["client_id"] == fake_slack.CLIENT_ID
    assert view["signing_secret"] == {"set": True, "last4": fake_slack.SIGNING_SECRET[-4:]}
    shown = json.dumps(view) + (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).text
    assert fake_slack.SIGNING_SECRET not in shown and fake_slack.CLIENT_SECRET not in shown
    # A pasted bot token is checked with auth.test.
    admin = bearer(admin_token)
    bad = await api.put("/v1/tenant/slack", json={**APP, "bot_token": "xoxb-0-not-a-token"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_bot_token"
    good = await api.put("/v1/tenant/slack", json={**APP, "bot_token": fake_slack.BOT_TOKEN}, headers=admin)
    assert good.status_code == 200 and good.json()["team_id"] == TEAM and fake_slack.BOT_TOKEN not in good.text
    missing = await api.put("/v1/tenant/slack", json={"client_id": "1.2"}, headers=bearer(admin_token))
    assert missing.status_code == 422
    # The pasted token names its workspace: that workspace is installed, with the token's scopes.
    [installation] = good.json()["installations"]
    assert installation["external_id"] == TEAM and "chat:write" in installation["scopes"]


async def test_install_binds_the_installers_dm_and_the_smith_answers(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-2, DEP-1, ID-2, ID-3, EV-1
    await connect_app(api, admin_token)
    smith_id = await smith(api, admin_token)
    link = await install_link(api, admin_token, smith_id)
    assert link["status"] == "pending" and link["install_url"] == link["deep_link"]
    assert link["install_url"].startswith("https://bots.example.com/v1/slack/install/")
    opened = await api.get(link["install_url"].removeprefix("https://bots.example.com"))
    assert opened.status_code == 302 and opened.headers["location"].startswith(slack.authorize_url)
    state = callback_query(opened)["state"][0]
    assert len(state) >= 22 and set(callback_query(opened)["scope"][0].split(",")) >= {"chat:write", "im:history"}

    page = await follow_install(api, link["install_url"])
    assert page.status_code == 200 and "Slack connected" in page.text
    dep = (await api.get(f"/v1/deployments/{link['id']}", headers=bearer(admin_token))).json()
    assert dep["status"] == "active" and dep["address"] == f"{TEAM}:{DM}" and dep["owner_identity"] == OWNER
    types = [e["type"] for e in (await api.get("/v1/events", headers=bearer(admin_token))).json()["data"]]
    assert "slack.install" in types and "deployment.bound" in types
    tenant = (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).json()
    assert [(i["external_id"], i["status"]) for i in tenant["installations"]] == [(TEAM, "active")]
    assert "xoxb-" not in json.dumps(tenant)

    # The link works once: opening it again answers a page saying so.
    again = await api.get(link["install_url"].removeprefix("https://bots.example.com"))
    assert again.status_code == 404 and "already used or expired" in again.text

    # A DM round trip: the installer is the owner; the reply lands in the DM.
    assert (await post_event(api, fake_slack.message_event("hello smith"))).status_code == 200
    await wait_until(lambda: "You said: hello smith" in texts_in(slack, DM), "the reply in the DM")
    run = (await api.get("/v1/runs", params={"source": "deployment"}, headers=bearer(admin_token))).json()["data"][0]
    assert run["metadata"]["sender"]["identity"] == OWNER and run["metadata"]["sender"]["is_owner"] is True
    posted = next(m for m in slack.posted if m["text"] == "You said: hello smith")
    assert posted.get("thread_ts") in (None, "")  # a DM answers at top level


async def test_cancel_and_forged_states_bind_nothing(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack
) -> None:  # SL-2
    await connect_app(api, admin_token)
    smith_id = await smith(api, admin_token)
    link = await install_link(api, admin_token, smith_id, return_url="https://console.example.com/smiths/x?tab=1")
    slack.consent = "cancel"
    cancelled = await follow_install(api, link["install_url"])
    assert cancelled.status_code == 302
    assert cancelled.headers["location"] == "https://console.example.com/smiths/x?tab=1&slack=cancelled"
    forged = await api.get("/v1/slack/oauth/callback", params={"state": "A" * 32, "code": "x"})
    assert forged.status_code == 400 and "invalid, already used or expired" in forged.text
    slack.consent = "allow"
    # The right state from another browser (no cookie) is refused too.
    opened = await api.get(link["install_url"].removeprefix("https://bots.example.com"))
    api.cookies.clear()
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(opened.headers["location"])
    back = consent.headers["location"].split("/v1/slack/oauth/callback", 1)[1]
    other = await api.get(f"/v1/slack/oauth/callback{back}")
    assert other.status_code == 302 and other.headers["location"].endswith("slack=error")
    dep = (await api.get(f"/v1/deployments/{link['id']}", headers=bearer(admin_token))).json()
    assert dep["status"] == "pending" and not slack.calls_to("oauth.v2.access")
    connected = await follow_install(api, link["install_url"])  # the link still works after all that
    assert connected.headers["location"].endswith("slack=connected")


async def test_channel_mentions_wake_the_smith_and_replies_go_in_the_thread(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-4, SL-5
    await installed(api, admin_token)
    channel_smith = await smith(api, admin_token)
    general = f"{TEAM}:{fake_slack.GENERAL_CHANNEL_ID}"
    bound = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": channel_smith}, "kind": "slack", "address": general})
    assert bound.status_code == 201 and bound.json()["status"] == "active", bound.text

    plain = fake_slack.message_event("lunch anyone?", channel=fake_slack.GENERAL_CHANNEL_ID, channel_type="channel")
    assert (await post_event(api, plain)).status_code == 200
    mention = fake_slack.mention_event("summarise this", thread_ts="1767225000.000050")
    assert (await post_event(api, mention)).status_code == 200
    reply = await wait_until(lambda: next((m for m in slack.posted if m["text"] == "You said: summarise this"), None),
                             "the reply to the mention")
    assert reply["channel"] == fake_slack.GENERAL_CHANNEL_ID and reply["thread_ts"] == "1767225000.000050"
    runs = (await api.get("/v1/runs", params={"smith_id": channel_smith}, headers=bearer(admin_token))).json()["data"]
    assert len(runs) == 1  # the plain message woke nobody

    # A mention outside any thread starts one under the message itself.
    top = fake_slack.mention_event("and this")
    await post_event(api, top)
    started = await wait_until(lambda: next((m for m in slack.posted if m["text"] == "You said: and this"), None),
                               "the threaded reply")
    assert started["thread_ts"] == top["ts"]

    # With wake = all_messages every message in the channel wakes it.
    patched = await api.patch(f"/v1/deployments/{bound.json()['id']}", headers=bearer(admin_token),
                              json={"provider_metadata": {"wake": "all_messages"}})
    assert patched.status_code == 200
    await post_event(api, fake_slack.message_event("status?", channel=fake_slack.GENERAL_CHANNEL_ID,
                                                   channel_type="channel"))
    await wait_until(lambda: "You said: status?" in texts_in(slack, fake_slack.GENERAL_CHANNEL_ID), "all messages")


async def test_retries_and_bad_requests_store_nothing_new(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, runtime: Runtime
) -> None:  # SL-3 ack, DESIGN §5
    await installed(api, admin_token)
    event = fake_slack.message_event("once please")
    first = await post_event(api, event, event_id="Ev0RETRY01")
    retry = await post_event(api, event, event_id="Ev0RETRY01", headers={"X-Slack-Retry-Num": "1",
                                                                          "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == retry.status_code == 200
    body = json.dumps(fake_slack.event_envelope(fake_slack.message_event("forged"))).encode()
    stale = fake_slack.sign(body, timestamp=int(__import__("time").time()) - 600)
    tampered = {**fake_slack.sign(body), "X-Slack-Signature": "v0=" + "0" * 64}
    for headers in (stale, tampered, {}):
        refused = await api.post("/v1/slack/webhook/default", content=body,
                                 headers={"content-type": "application/json", **headers})
        assert refused.status_code == 401, (headers, refused.text)
    swapped = await api.post("/v1/slack/webhook/default", content=body.replace(b"forged", b"forgeD"),
                             headers={"content-type": "application/json", **fake_slack.sign(body)})
    assert swapped.status_code == 401
    broken = b'{"type": "event_callback", "team_id": 5'
    malformed = await api.post("/v1/slack/webhook/default", content=broken,
                               headers={"content-type": "application/json", **fake_slack.sign(broken)})
    assert malformed.status_code == 400
    stranger = await post_event(api, fake_slack.message_event("who am I"), team_id="T0STRANGER")
    assert stranger.status_code == 200
    challenge = json.dumps({"token": "x", "challenge": "c0ffee", "type": "url_verification"}).encode()
    answered = await api.post("/v1/slack/webhook/default", content=challenge,
                              headers={"content-type": "application/json", **fake_slack.sign(challenge)})
    assert answered.status_code == 200 and answered.text == "c0ffee"
    async with runtime.transaction() as session:
        stored = (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one()
        runs = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
    assert (stored, runs) == (1, 1)


async def test_approval_buttons_are_the_owners_and_show_the_outcome(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # APR-3, ID-3: in a channel an admin bound, the installer decides; others are politely refused
    await installed(api, admin_token)
    channel_smith = await smith(api, admin_token, approval_required_tools=["memory_write"])
    bound = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": channel_smith}, "kind": "slack",
        "address": f"{TEAM}:{fake_slack.GENERAL_CHANNEL_ID}"})
    assert bound.status_code == 201 and bound.json()["owner_identity"] == OWNER, bound.text
    await post_event(api, fake_slack.mention_event("/remember plan = launch"))
    prompt = await wait_until(lambda: next((m for m in slack.posted if m.get("blocks")), None), "the prompt")
    assert prompt["channel"] == fake_slack.GENERAL_CHANNEL_ID and prompt["thread_ts"]  # in the mention's thread
    buttons = prompt["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Reject", "Edit"]
    approve = buttons[0]["value"]
    assert "run_" not in approve  # opaque
    general = fake_slack.GENERAL_CHANNEL_ID
    stranger = fake_slack.block_actions_payload("ic_approve", approve, user=fake_slack.OTHER_USER_ID,
                                                channel=general, message_ts=prompt["ts"])
    assert (await post_interaction(api, stranger)).status_code == 200
    refusal = await wait_until(lambda: slack.ephemerals, "the polite refusal")
    assert refusal[-1]["user"] == fake_slack.OTHER_USER_ID and "owner" in refusal[-1]["text"]
    owner = fake_slack.block_actions_payload("ic_approve", approve, channel=general, message_ts=prompt["ts"])
    answered = await post_interaction(api, owner)
    assert answered.status_code == 200 and answered.text == ""
    await wait_until(lambda: "Remembered plan." in texts_in(slack, general), "the tool's reply")
    update = await wait_until(lambda: slack.updates, "the prompt's update")
    assert update[-1]["ts"] == prompt["ts"] and update[-1]["text"] == "✅ Approved"
    memory = (await api.get(f"/v1/smiths/{channel_smith}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "launch")]
    # Literal addresses of a workspace that has not installed the app are refused.
    stray = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": channel_smith}, "kind": "slack", "address": "T0NOTHERE:C0ELSE"})
    assert stray.status_code == 422 and stray.json()["error"]["code"] == "not_installed"


async def test_edit_opens_a_modal_and_its_text_is_the_correction(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # APR-2 on Slack
    setup = await installed(api, admin_token, approval_required_tools=["memory_write"])
    await post_event(api, fake_slack.message_event("/remember plan = launch"))
    prompt = await wait_until(lambda: next((m for m in slack.posted if m.get("blocks")), None), "the prompt")
    edit = prompt["blocks"][-1]["elements"][2]["value"]
    await post_interaction(api, fake_slack.block_actions_payload("ic_edit", edit, message_ts=prompt["ts"]))
    opened = await wait_until(lambda: slack.views_opened, "the correction modal")
    view = opened[-1]["view"]
    assert view["callback_id"] == "ic_edit"
    submitted = fake_slack.view_submission_payload("ic_edit", view["private_metadata"],
                                                   {"edit": {"correction": "/remember plan = wait"}})
    answered = await post_interaction(api, submitted)
    assert answered.status_code == 200 and answered.text == ""  # an empty 200 closes the modal
    await wait_until(lambda: any('"wait"' in t for t in texts_in(slack, DM) if t.startswith("Approve")),
                     "the corrected prompt")
    second = [m for m in slack.posted if m.get("blocks")][-1]
    await post_interaction(api, fake_slack.block_actions_payload("ic_approve", second["blocks"][-1]["elements"][0]
                                                                 ["value"], message_ts=second["ts"]))
    await wait_until(lambda: "Remembered plan." in texts_in(slack, DM), "the corrected tool's reply")
    memory = (await api.get(f"/v1/smiths/{setup['smith_id']}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "wait")]


async def test_uninstall_revokes_the_workspaces_deployments(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-8, EV-1
    setup = await installed(api, admin_token)
    gone = await post_event(api, {"type": "app_uninstalled"}, event_id="Ev0UNINSTALL")
    assert gone.status_code == 200
    dep = (await api.get(f"/v1/deployments/{setup['deployment']['id']}", headers=bearer(admin_token))).json()
    assert dep["status"] == "revoked" and dep["revoked_reason"] == "uninstalled"
    events = (await api.get("/v1/events", params={"type": "slack.uninstalled"}, headers=bearer(admin_token))).json()
    assert events["data"][0]["data"]["deployments_revoked"] == [dep["id"]]
    tenant = (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).json()
    assert tenant["installations"][0]["status"] == "revoked"
    # Later events of that team change nothing.
    later = await post_event(api, fake_slack.message_event("still there?"))
    assert later.status_code == 200
    runs = (await api.get("/v1/runs", headers=bearer(admin_token))).json()["data"]
    assert runs == []


async def test_tools_follow_the_workspaces_grants(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # SL-7, DEP-6
    await installed(api, admin_token)
    slack.add_message(fake_slack.GENERAL_CHANNEL_ID, "the Q3 budget is approved", user=fake_slack.OTHER_USER_ID)
    await post_event(api, fake_slack.message_event('/tool slack_search {"query": "budget"}'))
    await wait_until(lambda: any("Q3 budget is approved" in t for t in texts_in(slack, DM)), "the search result")
    assert slack.calls_to("search.messages")[-1]["token"].startswith("xoxp-")  # search runs as the installer
    await post_event(api, fake_slack.message_event('/tool slack_list_channels {}'))
    await wait_until(lambda: any("#general" in t for t in texts_in(slack, DM)), "the channel list")
    await post_event(api, fake_slack.message_event(
        f'/tool slack_read_messages {{"channel": "{fake_slack.GENERAL_CHANNEL_ID}"}}'))
    await wait_until(lambda: sum("Q3 budget is approved" in t for t in texts_in(slack, DM)) >= 2, "the history")
    # The installer revokes the user token: search is no longer offered, and calling it says so.
    revoked = await post_event(api, {"type": "tokens_revoked", "tokens": {"oauth": [fake_slack.INSTALLER_ID]}},
                               event_id="Ev0REVOKEUSER")
    assert revoked.status_code == 200
    await post_event(api, fake_slack.message_event('/tool slack_search {"query": "budget"}'))
    await wait_until(lambda: any("not available to this smith" in t for t in texts_in(slack, DM)), "the refusal")
    assert len(slack.calls_to("search.messages")) == 1


async def test_a_reinstall_replaces_the_workspaces_tokens_not_adds_a_second(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack
) -> None:  # SL-2
    first = await installed(api, admin_token)
    second_smith = await smith(api, admin_token)
    link = await install_link(api, admin_token, second_smith)
    assert "Slack connected" in (await follow_install(api, link["install_url"])).text
    tenant = (await api.get("/v1/tenant/slack", headers=bearer(admin_token))).json()
    assert [(i["external_id"], i["status"]) for i in tenant["installations"]] == [(TEAM, "active")]
    old = (await api.get(f"/v1/deployments/{first['deployment']['id']}", headers=bearer(admin_token))).json()
    new = (await api.get(f"/v1/deployments/{link['id']}", headers=bearer(admin_token))).json()
    assert (old["status"], old["revoked_reason"]) == ("revoked", "replaced")  # one smith per DM
    assert new["status"] == "active" and new["address"] == f"{TEAM}:{DM}"
    assert len(slack.calls_to("oauth.v2.access")) == 2


async def test_a_decision_in_the_api_updates_the_prompt_in_slack(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # APR-3: the console and /v1 decide through the same service as a tap
    await installed(api, admin_token, approval_required_tools=["memory_write"])
    await post_event(api, fake_slack.message_event("/remember plan = launch"))
    prompt = await wait_until(lambda: next((m for m in slack.posted if m.get("blocks")), None), "the prompt")
    paused = await wait_until(lambda: _awaiting(api, admin_token), "the paused run")
    decided = await api.post(f"/v1/runs/{paused}/submit", json={"decision": "reject"}, headers=bearer(admin_token))
    assert decided.status_code == 200, decided.text
    update = await wait_until(lambda: slack.updates, "the prompt's update")
    assert update[-1]["ts"] == prompt["ts"] and update[-1]["text"] == "❌ Rejected"
    assert all(block["type"] != "actions" for block in update[-1]["blocks"])  # no buttons left to tap


async def _awaiting(api: httpx.AsyncClient, token: str) -> str | None:
    runs = (await api.get("/v1/runs", params={"status": "awaiting_approval"}, headers=bearer(token))).json()["data"]
    return runs[0]["id"] if runs else None


async def test_a_senders_display_name_is_looked_up_once_and_never_the_identity(
    api: httpx.AsyncClient, admin_token: str, slack: FakeSlack, running: None
) -> None:  # ID-2
    await installed(api, admin_token)
    await post_event(api, fake_slack.message_event("first"))
    await wait_until(lambda: "You said: first" in texts_in(slack, DM), "the first reply")
    await wait_until(lambda: slack.calls_to("users.info"), "the name lookup")
    await post_event(api, fake_slack.message_event("second"))
    await wait_until(lambda: "You said: second" in texts_in(slack, DM), "the second reply")
    runs = (await api.get("/v1/runs", params={"source": "deployment"}, headers=bearer(admin_token))).json()["data"]
    senders = {r["input"][0]["content"]: r["metadata"]["sender"] for r in runs}
    assert senders["first"]["display"] == fake_slack.INSTALLER_ID  # not known yet: the id
    assert senders["second"]["display"] != fake_slack.INSTALLER_ID
    assert {s["identity"] for s in senders.values()} == {OWNER}  # the identity never changes
    assert len(slack.calls_to("users.info")) == 1
