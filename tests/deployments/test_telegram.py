"""Deployments on Telegram, end to end (TG-1..TG-3, DEP-1..DEP-6, ID-1..ID-3, CHIP-2, APR-2)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.services.runtime import Runtime
from models import InboundDelivery, Run, Smith
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, texts_to, wait_until, webhook_secret
from tests.fakes.telegram import FAKE_BOT_USERNAME, FAKE_TOKEN, FakeTelegram, callback_query, private_message

DANA = 5551234


async def _smith(api: httpx.AsyncClient, token: str, **agent: Any) -> tuple[str, str]:
    created = (await api.post("/v1/agents", json={"name": "Concierge", **agent}, headers=bearer(token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": created["id"], "name": "Dana's PA"},
                            headers=bearer(token))).json()
    return created["id"], smith["id"]


async def _bound(api: httpx.AsyncClient, tg: FakeTelegram, token: str, **agent: Any) -> dict[str, Any]:
    await connect_bot(api, token)
    agent_id, smith_id = await _smith(api, token, **agent)
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": "telegram", "setup": {"mode": "start_token"}})
    assert created.status_code == 201, created.text
    start = created.json()["deep_link"].split("start=")[1]
    assert (await post_update(api, tg, private_message(f"/start {start}", update_id=1))).status_code == 200
    return {"agent_id": agent_id, "smith_id": smith_id, "deployment": created.json(), "start": start}


async def test_connect_registers_the_webhook_and_never_returns_the_token(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram
) -> None:  # TG-1, API-3
    view = await connect_bot(api, admin_token)
    assert view["configured"] and view["bot_username"] == FAKE_BOT_USERNAME
    assert view["mode"] == "webhook"
    assert view["webhook_url"] == "https://bots.example.com/v1/telegram/webhook/default"
    assert FAKE_TOKEN not in str(view) and view["bot_token"] == {"set": True, "last4": FAKE_TOKEN[-4:]}
    registered = tg.calls_to("setWebhook")[-1]
    assert registered["url"] == view["webhook_url"]
    assert len(registered["secret_token"]) >= 32
    assert registered["allowed_updates"] == ["message", "callback_query"]
    got = await api.get("/v1/tenant/telegram", headers=bearer(admin_token))
    assert got.json()["bot_username"] == FAKE_BOT_USERNAME and FAKE_TOKEN not in got.text
    bad = await api.put("/v1/tenant/telegram", json={"bot_token": "999:not-a-real-token"}, headers=bearer(admin_token))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_bot_token"


async def test_deep_link_binds_once_and_the_smith_answers(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # TG-2, DEP-1, DEP-3, ID-1, ID-3, EV-1
    bound = await _bound(api, tg, admin_token)
    link = bound["deployment"]["deep_link"]
    assert link.startswith(f"https://t.me/{FAKE_BOT_USERNAME}?start=") and len(bound["start"]) >= 22
    assert bound["deployment"]["status"] == "pending" and bound["deployment"]["deep_link_expires_at"]
    dep = (await api.get(f"/v1/deployments/{bound['deployment']['id']}", headers=bearer(admin_token))).json()
    assert dep["status"] == "active" and dep["address"] == str(DANA) and dep["owner_identity"] == f"telegram:{DANA}"
    assert dep["deep_link"] is None  # shown once
    await wait_until(lambda: any("connected" in t for t in texts_to(tg, DANA)), "the binding confirmation")
    events = (await api.get("/v1/events", params={"type": "deployment.bound"}, headers=bearer(admin_token))).json()
    assert events["data"][0]["deployment_id"] == dep["id"]

    await post_update(api, tg, private_message("hello smith", update_id=2))
    await wait_until(lambda: "You said: hello smith" in texts_to(tg, DANA), "the reply in the chat")
    run = (await api.get("/v1/runs", params={"source": "deployment"}, headers=bearer(admin_token))).json()["data"][0]
    assert run["metadata"]["sender"] == {"is_owner": True, "channel": "telegram", "identity": f"telegram:{DANA}",
                                         "display": "Dana", "verified": True}
    assert run["metadata"]["deployment_id"] == dep["id"]

    # The link works once: a second tap (another account) binds nothing and gets a polite reply.
    await post_update(api, tg, private_message(f"/start {bound['start']}", user_id=777, update_id=3))
    await wait_until(lambda: any("invalid, already used or expired" in t for t in texts_to(tg, 777)), "polite reply")
    again = (await api.get(f"/v1/deployments/{dep['id']}", headers=bearer(admin_token))).json()
    assert again["owner_identity"] == f"telegram:{DANA}"


async def test_chips_render_as_a_one_time_reply_keyboard(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # CHIP-2, CHIP-5
    await _bound(api, tg, admin_token)
    await post_update(api, tg, private_message("/chips Yes | No | Later", update_id=5))
    await wait_until(lambda: "Pick one:" in texts_to(tg, DANA), "the chips message")
    message = next(m for m in tg.sent_messages if m.get("text") == "Pick one:")
    markup = message["reply_markup"]
    assert markup["one_time_keyboard"] is True
    assert [b if isinstance(b, str) else b["text"] for row in markup["keyboard"] for b in row] == ["Yes", "No", "Later"]


async def test_approval_by_inline_keyboard(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # APR-1, APR-2
    bound = await _bound(api, tg, admin_token, approval_required_tools=["memory_write"])
    await post_update(api, tg, private_message("/remember plan = launch", update_id=10))
    prompt = await wait_until(lambda: next((m for m in tg.sent_messages if m["text"].startswith("Approve")), None),
                              "the approval prompt")
    buttons = prompt["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["✅ Approve", "❌ Reject", "✏️ Edit"]
    approve = buttons[0]["callback_data"]
    assert len(approve.encode()) <= 64 and "run_" not in approve  # opaque
    # Someone else's tap is refused.
    await post_update(api, tg, callback_query(approve, user_id=999, update_id=11))
    await wait_until(lambda: any(a.get("text") == "Only the owner can decide." for a in tg.callback_answers), "refusal")
    await post_update(api, tg, callback_query(approve, message_id=int(prompt["message_id"]), update_id=12))
    await wait_until(lambda: "Remembered plan." in texts_to(tg, DANA), "the tool's reply")
    memory = (await api.get(f"/v1/smiths/{bound['smith_id']}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "launch")]
    assert tg.calls_to("editMessageText")[-1]["text"] == "✅ Approved"


async def test_a_decision_made_in_the_api_updates_the_prompt_in_the_chat(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # APR-1, APR-2: the console and /v1 decide through the same service as a tap
    await _bound(api, tg, admin_token, approval_required_tools=["memory_write"])
    await post_update(api, tg, private_message("/remember plan = launch", update_id=30))
    prompt = await wait_until(lambda: next((m for m in tg.sent_messages if m["text"].startswith("Approve")), None),
                              "the approval prompt")
    paused = await wait_until(lambda: _awaiting(api, admin_token), "the paused run")
    decided = await api.post(f"/v1/runs/{paused}/submit", json={"decision": "reject"}, headers=bearer(admin_token))
    assert decided.status_code == 200, decided.text
    edit = await wait_until(lambda: tg.calls_to("editMessageText"), "the prompt's edit")
    assert edit[-1]["text"] == "❌ Rejected" and str(edit[-1]["message_id"]) == str(prompt["message_id"])
    shown = tg.messages[(DANA, int(prompt["message_id"]))]
    assert shown["text"] == "❌ Rejected" and "reply_markup" not in shown  # the buttons are gone
    # A late tap on the old keyboard changes nothing.
    approve = prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await post_update(api, tg, callback_query(approve, update_id=31))
    await wait_until(lambda: any(a.get("text") == "Already decided." for a in tg.callback_answers), "refusal")
    assert len(tg.calls_to("editMessageText")) == 1


async def _awaiting(api: httpx.AsyncClient, token: str) -> str | None:
    runs = (await api.get("/v1/runs", params={"status": "awaiting_approval"}, headers=bearer(token))).json()["data"]
    return runs[0]["id"] if runs else None


async def test_edit_takes_the_next_message_as_the_correction(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # APR-2
    bound = await _bound(api, tg, admin_token, approval_required_tools=["memory_write"])
    await post_update(api, tg, private_message("/remember plan = launch", update_id=20))
    first = await wait_until(lambda: [m for m in tg.sent_messages if m["text"].startswith("Approve")], "prompt")
    edit = first[0]["reply_markup"]["inline_keyboard"][0][2]["callback_data"]
    await post_update(api, tg, callback_query(edit, update_id=21))
    await wait_until(lambda: tg.calls_to("answerCallbackQuery"), "the edit acknowledgement")
    await post_update(api, tg, private_message("/remember plan = wait", update_id=22))
    second = await wait_until(lambda: [m for m in tg.sent_messages if m["text"].startswith("Approve")][1:],
                              "the second prompt")
    assert '"wait"' in second[0]["text"]
    approve = second[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await post_update(api, tg, callback_query(approve, update_id=23))
    await wait_until(lambda: "Remembered plan." in texts_to(tg, DANA), "the corrected tool's reply")
    memory = (await api.get(f"/v1/smiths/{bound['smith_id']}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "wait")]
    runs = (await api.get("/v1/runs", headers=bearer(admin_token))).json()["data"]
    assert len({r["metadata"]["thread_id"] for r in runs}) == 1  # the same thread throughout


async def test_bad_webhook_requests_store_nothing(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # DESIGN §5
    await connect_bot(api, admin_token)
    update = private_message("hi", update_id=50)
    forged = await post_update(api, tg, update, secret="wrong-secret")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    missing = await api.post("/v1/telegram/webhook/default", json=update)
    assert missing.status_code == 401
    malformed = await api.post("/v1/telegram/webhook/default", content=b"{nope",
                               headers={"X-Telegram-Bot-Api-Secret-Token": webhook_secret(tg)})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_payload"
    unknown = await post_update(api, tg, update, tenant="nobody")
    assert unknown.status_code == 401 and unknown.json() == forged.json()  # issue 13: no enumeration
    async with runtime.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one() == 0
    # Unaddressed or ignored updates still get 200; a replay is stored once.
    assert (await post_update(api, tg, {"update_id": 51, "edited_message": update["message"]})).status_code == 200
    ok = [await post_update(api, tg, update) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    async with runtime.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one() == 1


async def test_agent_catch_all_mints_one_smith_per_sender(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None
) -> None:  # DEP-4, DEP-5, TG-3
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    created = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                      "kind": "telegram"}, headers=bearer(admin_token))
    assert created.status_code == 201 and created.json()["status"] == "active"
    second = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                     "kind": "telegram"}, headers=bearer(admin_token))
    assert second.status_code == 409
    assert second.json()["error"]["existing_id"] == created.json()["id"]

    first_messages = [post_update(api, tg, private_message(f"hi {i}", user_id=4242, first_name="Jo",
                                                           update_id=100 + i)) for i in range(20)]
    assert {r.status_code for r in await asyncio.gather(*first_messages)} == {200}
    async with runtime.transaction() as session:
        stmt = select(Smith).where(Smith.provider_identity == "telegram:4242")
        minted = (await session.execute(stmt)).scalars().all()
        assert len(minted) == 1
        assert (await session.execute(select(func.count()).select_from(Run).where(
            Run.smith_id == minted[0].id))).scalar_one() == 20
    await post_update(api, tg, private_message("hello", user_id=9001, first_name="Sam", update_id=200))
    await wait_until(lambda: "You said: hello" in texts_to(tg, 9001), "the other sender's reply")
    async with runtime.transaction() as session:
        owners = (await session.execute(select(Smith.provider_identity).where(
            Smith.minted_by_deployment_id == created.json()["id"]))).scalars().all()
    assert sorted(owners) == ["telegram:4242", "telegram:9001"]


async def test_exact_binding_wins_over_the_catch_all(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # DEP-5
    bound = await _bound(api, tg, admin_token)
    await api.post("/v1/deployments", json={"target": {"type": "agent", "id": bound["agent_id"]}, "kind": "telegram"},
                   headers=bearer(admin_token))
    await post_update(api, tg, private_message("whose?", update_id=300))
    await wait_until(lambda: "You said: whose?" in texts_to(tg, DANA), "the reply")
    run = (await api.get("/v1/runs", params={"source": "deployment"}, headers=bearer(admin_token))).json()["data"][0]
    assert run["smith_id"] == bound["smith_id"]


async def test_send_tool_comes_and_goes_with_the_deployment(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # DEP-6, CHIP-6, REN-1
    bound = await _bound(api, tg, admin_token)
    body = {"input": [{"role": "user", "content":
                       '/tool telegram_send_message {"text": "Stand-up in 5", "suggested_replies": ["OK"]}'}]}
    await api.post(f"/v1/smiths/{bound['smith_id']}/runs", json=body, headers=bearer(admin_token))
    await wait_until(lambda: "Stand-up in 5" in texts_to(tg, DANA), "the proactive message")
    sent = next(m for m in tg.sent_messages if m["text"] == "Stand-up in 5")
    assert sent["reply_markup"]["keyboard"][0][0] in ("OK", {"text": "OK"})
    rename = await api.patch(f"/v1/deployments/{bound['deployment']['id']}", json={"display_name": "New"},
                             headers=bearer(admin_token))
    assert rename.status_code == 422 and rename.json()["error"]["code"] == "rename_unsupported"
    assert (await api.delete(f"/v1/deployments/{bound['deployment']['id']}",
                             headers=bearer(admin_token))).status_code == 204
    run = (await api.post(f"/v1/smiths/{bound['smith_id']}/runs", json=body, headers=bearer(admin_token))).json()
    done = await wait_until(lambda: _finished(api, admin_token, run["id"]), "the run without the tool")
    assert "not available" in done["output"]["text"]


async def _finished(api: httpx.AsyncClient, token: str, run_id: str) -> dict[str, Any] | None:
    run = (await api.get(f"/v1/runs/{run_id}", headers=bearer(token))).json()
    return run if run["status"] in {"completed", "failed"} else None


async def test_rate_limits_are_retried_and_blocked_users_dead_letter(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:
    await _bound(api, tg, admin_token)
    await wait_until(lambda: texts_to(tg, DANA), "the binding confirmation")
    tg.rate_limit_next("sendMessage", retry_after=1)
    await post_update(api, tg, private_message("slow down", update_id=400))
    await wait_until(lambda: "You said: slow down" in texts_to(tg, DANA), "the retried reply")
    tg.block_next("sendMessage", times=5)
    await post_update(api, tg, private_message("are you there", update_id=401))
    dead = await wait_until(lambda: _dead(api, admin_token), "the dead letter")
    assert dead[0]["attempts"] == 1 and "blocked" in dead[0]["last_error"]
    replay = await api.post(f"/v1/deliveries/{dead[0]['id']}/replay", headers=bearer(admin_token))
    assert replay.status_code == 200 and replay.json()["status"] == "pending"


async def _dead(api: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return (await api.get("/v1/deliveries", params={"status": "dead"}, headers=bearer(token))).json()["data"]


async def test_scopes_and_validation(api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram) -> None:  # API-2
    await connect_bot(api, admin_token)
    _, mine = await _smith(api, admin_token)
    _, other = await _smith(api, admin_token)
    token = (await api.post(f"/v1/smiths/{mine}/tokens", json={}, headers=bearer(admin_token))).json()["token"]
    target = {"target": {"type": "smith", "id": other}, "kind": "telegram"}
    assert (await api.post("/v1/deployments", json=target, headers=bearer(token))).status_code == 403
    ok = await api.post("/v1/deployments", json={**target, "target": {"type": "smith", "id": mine}},
                        headers=bearer(token))
    assert ok.status_code == 201
    missing = await api.post("/v1/deployments", json={**target, "target": {"type": "smith", "id": "smt_nope"}},
                             headers=bearer(admin_token))
    assert missing.status_code == 404
    unconnected = await api.post("/v1/deployments", json={**target, "kind": "linkedin"}, headers=bearer(admin_token))
    assert unconnected.status_code == 409 and unconnected.json()["error"]["code"] == "integration_not_configured"
    listed = (await api.get("/v1/deployments", params={"kind": "telegram"}, headers=bearer(admin_token))).json()
    assert [d["id"] for d in listed["data"]] == [ok.json()["id"]]


@pytest.mark.parametrize("public_url", ["http://localhost:8000"])
async def test_polling_mode_without_a_public_url(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # TG-1
    view = await connect_bot(api, admin_token)
    assert view["mode"] == "polling" and view["webhook_url"] is None
    assert tg.calls_to("deleteWebhook") and not tg.calls_to("setWebhook")
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]}, "kind": "telegram"},
                   headers=bearer(admin_token))
    tg.queue_update(private_message("polled hello", user_id=31337))
    await wait_until(lambda: "You said: polled hello" in texts_to(tg, 31337), "the polled reply", wait_s=30)
