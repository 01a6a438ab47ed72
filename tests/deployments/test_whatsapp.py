"""Deployments on WhatsApp, end to end (WA-1, WA-2, ID-1..ID-3, CHIP-3, APR-3): the /v1 API in-process, real
workers and outbox, the channel talking to the fake Graph API (tests/fakes/whatsapp.py), and webhooks signed
as Meta signs them."""

from __future__ import annotations

import json

import httpx

from app.services.runtime import Runtime
from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.deployments.whatsapp_helpers import (  # noqa: F401 (graph and settings are fixtures)
    DANA,
    NUMBER,
    OWNER,
    SAM,
    WEBHOOK,
    bound,
    connect,
    count_stored_and_runs,
    graph_fixture,
    post,
    prompts_to,
    settings_with_graph,
    texts_to,
)
from tests.fakes import whatsapp as fake_wa
from tests.fakes.whatsapp import FakeGraph


async def test_connect_validates_the_number_and_never_returns_a_secret(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph
) -> None:  # WA-1, API-3
    admin = bearer(admin_token)
    before = (await api.get("/v1/tenant/whatsapp", headers=admin)).json()
    assert before["configured"] is False
    assert before["urls"] == {"webhook_url": "https://bots.example.com/v1/whatsapp/webhook/default"}
    view = await connect(api, admin_token)
    assert view["configured"] and view["mode"] == "webhook" and view["webhook_url"] == before["urls"]["webhook_url"]
    assert (view["phone_number_id"], view["display_phone_number"], view["verified_name"], view["quality_rating"]) == (
        fake_wa.PHONE_NUMBER_ID, fake_wa.DISPLAY_PHONE_NUMBER, fake_wa.VERIFIED_NAME, "GREEN")
    assert view["access_token"] == {"set": True, "last4": fake_wa.ACCESS_TOKEN[-4:]}
    assert view["app_secret"] == {"set": True, "last4": fake_wa.APP_SECRET[-4:]}
    # The verify token is shown on purpose (the admin pastes it into Meta), with the steps that say where.
    verify_token = view["verify_token"]
    assert len(verify_token) >= 22 and any(verify_token in step for step in view["steps"])
    assert any("subscribe to messages" in step for step in view["steps"])
    got = await api.get("/v1/tenant/whatsapp", headers=admin)
    for shown in (json.dumps(view), got.text):
        assert fake_wa.ACCESS_TOKEN not in shown and fake_wa.APP_SECRET not in shown
    assert got.json()["verify_token"] == verify_token
    assert graph.calls[-1][:2] == ("GET", f"/{fake_wa.GRAPH_VERSION}/{fake_wa.PHONE_NUMBER_ID}")

    bad = await api.put("/v1/tenant/whatsapp", json={**NUMBER, "access_token": "EAAGexpiredOrWrong000000"},
                        headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_access_token"
    assert bad.json()["error"]["field"] == "access_token"
    unknown = await api.put("/v1/tenant/whatsapp", json={**NUMBER, "phone_number_id": "999999999999"}, headers=admin)
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "phone_number_id"
    missing = await api.put("/v1/tenant/whatsapp", json={"phone_number_id": fake_wa.PHONE_NUMBER_ID}, headers=admin)
    assert missing.status_code == 422
    # Saving again keeps the verify token, so the handshake configured in Meta goes on working.
    assert (await connect(api, admin_token))["verify_token"] == verify_token


async def test_meta_s_handshake_is_answered_with_the_challenge(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph
) -> None:  # WA issue §2
    verify_token = (await connect(api, admin_token))["verify_token"]
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": verify_token}
    answered = await api.get(WEBHOOK, params=query)
    assert answered.status_code == 200 and answered.text == "1158201444"
    assert answered.headers["content-type"].startswith("text/plain")
    for wrong in ({**query, "hub.verify_token": verify_token + "x"}, {**query, "hub.mode": "unsubscribe"}, {}):
        refused = await api.get(WEBHOOK, params=wrong)
        assert refused.status_code == 403 and "1158201444" not in refused.text  # as Meta expects


async def test_a_wa_me_link_binds_the_first_sender_and_the_smith_answers(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA-2, DEP-1, ID-1..ID-3, EV-1, CHIP-3
    setup = await bound(api, graph, admin_token)
    link = setup["deployment"]["deep_link"]
    assert link.startswith(f"https://wa.me/{fake_wa.BUSINESS_NUMBER}?text=Hi%21%20My%20connect%20code%20is%20")
    dep = (await api.get(f"/v1/deployments/{setup['deployment']['id']}", headers=bearer(admin_token))).json()
    assert (dep["status"], dep["address"], dep["owner_identity"]) == ("active", DANA, OWNER)
    events = (await api.get("/v1/events", params={"type": "deployment.bound"}, headers=bearer(admin_token))).json()
    assert events["data"][0]["deployment_id"] == dep["id"]
    await wait_until(lambda: any("connected" in t for t in texts_to(graph, DANA)), "the binding confirmation")
    runs = (await api.get("/v1/runs", params={"smith_id": setup["smith_id"]}, headers=bearer(admin_token))).json()
    assert runs["data"] == []  # the code never reached the model

    await post(api, fake_wa.text_message("hello smith"))
    await wait_until(lambda: "You said: hello smith" in texts_to(graph, DANA), "the reply")
    run = (await api.get("/v1/runs", params={"source": "deployment"}, headers=bearer(admin_token))).json()["data"][0]
    assert run["metadata"]["sender"] == {"is_owner": True, "channel": "whatsapp", "identity": OWNER,
                                         "display": fake_wa.USER_NAME, "verified": True}

    # Chips are reply buttons; a tap reads as the label typed.
    await post(api, fake_wa.text_message("/chips Yes | No | Later"))
    offer = await wait_until(lambda: next((m for m in graph.sent_to(DANA) if m["type"] == "interactive"), None),
                             "the chips")
    buttons = offer["interactive"]["action"]["buttons"]
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in buttons] == [("chip:0", "Yes"), ("chip:1", "No"),
                                                                          ("chip:2", "Later")]
    await post(api, fake_wa.button_reply("chip:1", "No", context_id=offer["wamid"]))
    await wait_until(lambda: "You said: No" in texts_to(graph, DANA), "the chip's answer")

    # The link works once: the same greeting from another phone binds nothing and gets a polite reply.
    await post(api, fake_wa.text_message(setup["greeting"], wa_id=SAM, name=fake_wa.OTHER_NAME))
    await wait_until(lambda: any("invalid, already used or expired" in t for t in texts_to(graph, SAM)), "the refusal")
    again = (await api.get(f"/v1/deployments/{dep['id']}", headers=bearer(admin_token))).json()
    assert again["owner_identity"] == OWNER


async def test_forged_duplicate_and_foreign_posts_store_nothing_new(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, runtime: Runtime
) -> None:  # WA issue §2 and "Bad input"
    await bound(api, graph, admin_token)
    message = fake_wa.body(fake_wa.text_message("once please", wamid="wamid.HBgLONCEPLEASE0001"))
    assert (await post(api, message)).status_code == 200
    after_first = await count_stored_and_runs(runtime)
    assert after_first == (2, 1)  # the binding message and this one; one run
    assert (await post(api, message)).status_code == 200  # Meta retries: the wamid is already stored
    forged = [fake_wa.sign(message, "0" * 32), {}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}]
    for headers in forged:
        refused = await api.post(WEBHOOK, content=message, headers={"content-type": "application/json", **headers})
        assert refused.status_code == 401, headers
    swapped = await api.post(WEBHOOK, content=message.replace(b"once", b"twice"),
                             headers={"content-type": "application/json", **fake_wa.sign(message)})
    assert swapped.status_code == 401
    assert (await post(api, b'{"object": "whatsapp_business_account", "entry": [')).status_code == 400
    other_number = fake_wa.text_message("misrouted", phone_number_id="987654321098765")
    assert (await post(api, other_number)).status_code == 200  # ignored, but answered 200
    assert await count_stored_and_runs(runtime) == after_first

    # One POST with several entries: every message and status is stored, in one request.
    batch = fake_wa.batch(fake_wa.text_message("first"), fake_wa.text_message("second"),
                          fake_wa.status("wamid.HBgLSENTBEFORE0001", "delivered"))
    assert (await post(api, batch)).status_code == 200
    assert await count_stored_and_runs(runtime) == (after_first[0] + 3, after_first[1] + 2)


async def test_approval_by_button_is_the_owners(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # APR-3, ID-3
    setup = await bound(api, graph, admin_token, approval_required_tools=["memory_write"])
    await post(api, fake_wa.text_message("/remember plan = launch"))
    prompt = await wait_until(lambda: next(iter(prompts_to(graph, DANA)), None), "the approval prompt")
    buttons = prompt["interactive"]["action"]["buttons"]
    assert [b["reply"]["title"] for b in buttons] == ["Approve", "Reject", "Edit"]
    approve = buttons[0]["reply"]["id"]
    assert "run_" not in approve  # opaque
    # Someone else's tap on the same button id is refused, in a reply to them.
    await post(api, fake_wa.button_reply(approve, "Approve", context_id=prompt["wamid"], wa_id=SAM,
                                         name=fake_wa.OTHER_NAME))
    await wait_until(lambda: "Only the owner can decide." in texts_to(graph, SAM), "the refusal")
    await post(api, fake_wa.button_reply(approve, "Approve", context_id=prompt["wamid"]))
    await wait_until(lambda: "Remembered plan." in texts_to(graph, DANA), "the tool's reply")
    outcome = await wait_until(lambda: next((m for m in graph.sent_to(DANA) if m.get("context")), None), "the outcome")
    assert outcome["text"]["body"] == "✅ Approved" and outcome["context"] == {"message_id": prompt["wamid"]}
    memory = (await api.get(f"/v1/smiths/{setup['smith_id']}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "launch")]


async def test_the_agent_catch_all_mints_a_smith_per_number_and_messages_show_read(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA-3, DEP-4, issue 16 §5 (read receipts)
    await connect(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Front desk"}, headers=bearer(admin_token))).json()
    catch_all = await api.post("/v1/deployments", headers=bearer(admin_token),
                               json={"target": {"type": "agent", "id": agent["id"]}, "kind": "whatsapp"})
    assert catch_all.status_code == 201, catch_all.text
    first = fake_wa.text_message("hi from dana")
    await post(api, first)
    await post(api, fake_wa.text_message("hi from sam", wa_id=SAM, name=fake_wa.OTHER_NAME))
    await post(api, fake_wa.text_message("dana again"))
    await wait_until(lambda: "You said: dana again" in texts_to(graph, DANA) and
                     "You said: hi from sam" in texts_to(graph, SAM), "both people's replies")
    smiths = (await api.get("/v1/smiths", headers=bearer(admin_token))).json()["data"]
    minted = {s["owner_identity"] for s in smiths if s["owner_identity"]}
    assert minted == {OWNER, f"whatsapp:{SAM}"}  # one smith per number, however many messages
    wamid = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await wait_until(lambda: wamid in graph.read_marks, "the read receipt")
    assert len(graph.read_marks) == 3
