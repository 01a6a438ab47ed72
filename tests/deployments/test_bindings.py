"""Who may bind a conversation, one live binding per conversation, revoked deployments that stay
listed, and replies of runs no conversation started (issue 13; DEP-1..DEP-6, SCH-2, ID-3, ID-5)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.services.runtime import Runtime
from models import Agent, Deployment, Run
from models.types import new_id
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, texts_to, wait_until
from tests.fakes.telegram import FakeTelegram, callback_query, private_message

DANA, EVE = 5551234, 6660001


async def _agent(api: httpx.AsyncClient, token: str, **agent: Any) -> str:
    created = await api.post("/v1/agents", json={"name": "Concierge", **agent}, headers=bearer(token))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _smith(api: httpx.AsyncClient, token: str, agent_id: str, name: str) -> str:
    created = await api.post("/v1/smiths", json={"agent_id": agent_id, "name": name}, headers=bearer(token))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _smith_token(api: httpx.AsyncClient, admin_token: str, smith_id: str) -> str:
    minted = await api.post(f"/v1/smiths/{smith_id}/tokens", json={"subject": "owner"}, headers=bearer(admin_token))
    assert minted.status_code == 201, minted.text
    return str(minted.json()["token"])


async def _link(api: httpx.AsyncClient, token: str, smith_id: str) -> dict[str, Any]:
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": "telegram"})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def _tap(api: httpx.AsyncClient, tg: FakeTelegram, link: dict[str, Any], *, user_id: int = DANA,
               update_id: int) -> None:
    start = link["deep_link"].split("start=")[1]
    answer = await post_update(api, tg, private_message(f"/start {start}", user_id=user_id, update_id=update_id))
    assert answer.status_code == 200, answer.text


async def _get(api: httpx.AsyncClient, token: str, deployment_id: str) -> dict[str, Any]:
    got = await api.get(f"/v1/deployments/{deployment_id}", headers=bearer(token))
    assert got.status_code == 200, got.text
    return dict(got.json())


async def _live_bindings(runtime: Runtime, address: str) -> int:
    async with runtime.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Deployment).where(
            Deployment.address == address, Deployment.status == "active"))).scalar_one())


async def test_a_smith_token_cannot_bind_a_chat_it_has_not_proved(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # DEP-1, API-2: the binding takeover of issue 13
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    mallory = await _smith(api, admin_token, agent_id, "Mallory's PA")
    token = await _smith_token(api, admin_token, mallory)
    taken = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": mallory}, "kind": "telegram", "address": str(DANA)})
    assert taken.status_code == 403, taken.text
    assert taken.json()["error"]["code"] == "address_requires_admin"
    assert await _live_bindings(runtime, str(DANA)) == 0
    # What it may do: make a link for its own smith, which binds only when someone taps it.
    link = await _link(api, token, mallory)
    assert link["status"] == "pending" and link["deep_link"]


async def test_an_admin_literal_address_is_checked_and_its_private_chat_owner_may_approve(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # SL-4's literal address on Telegram, ID-3, APR-2
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token, approval_required_tools=["memory_write"])
    smith = await _smith(api, admin_token, agent_id, "Dana's PA")
    for bad in ("dana", "12 34", "-0", "@ab"):
        refused = await api.post("/v1/deployments", headers=bearer(admin_token), json={
            "target": {"type": "smith", "id": smith}, "kind": "telegram", "address": bad})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_address", bad
        assert refused.json()["error"]["field"] == "address"
    created = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": smith}, "kind": "telegram", "address": str(DANA)})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active" and created.json()["owner_identity"] == f"telegram:{DANA}"

    await post_update(api, tg, private_message("/remember plan = launch", update_id=5))
    prompt = await wait_until(lambda: next((m for m in tg.sent_messages if m["text"].startswith("Approve")), None),
                              "the approval prompt")
    approve = prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await post_update(api, tg, callback_query(approve, message_id=int(prompt["message_id"]), update_id=6))
    await wait_until(lambda: "Remembered plan." in texts_to(tg, DANA), "the approved tool's reply")


async def test_a_second_deep_link_replaces_the_first_binding(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None
) -> None:  # DEP-3, EV-1: the rebind scenario of issue 13
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    smith_a = await _smith(api, admin_token, agent_id, "Alpha")
    smith_b = await _smith(api, admin_token, agent_id, "Bravo")
    link_a, link_b = await _link(api, admin_token, smith_a), await _link(api, admin_token, smith_b)
    await _tap(api, tg, link_a, update_id=1)
    await _tap(api, tg, link_b, update_id=2)
    await wait_until(lambda: "You're now connected to Bravo instead of Alpha. Say hello!" in texts_to(tg, DANA),
                     "the person is told which smith they now talk to")
    assert await _live_bindings(runtime, str(DANA)) == 1
    old, new = await _get(api, admin_token, link_a["id"]), await _get(api, admin_token, link_b["id"])
    assert (old["status"], old["revoked_reason"]) == ("revoked", "replaced") and old["revoked_at"]
    assert new["status"] == "active" and new["address"] == str(DANA)
    replaced = (await api.get("/v1/events", params={"type": "deployment.replaced"},
                              headers=bearer(admin_token))).json()["data"]
    assert replaced[0]["deployment_id"] == link_a["id"] and replaced[0]["data"]["replaced_by"] == link_b["id"]

    await post_update(api, tg, private_message("who are you", update_id=3))
    await wait_until(lambda: "You said: who are you" in texts_to(tg, DANA), "the reply")
    async with runtime.transaction() as session:
        run = (await session.execute(select(Run).where(Run.source == "deployment"))).scalar_one()
    assert run.smith_id == smith_b and run.deployment_id == link_b["id"]


async def test_an_admin_literal_address_never_replaces_a_proven_binding(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # DEP-1
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    smith_a = await _smith(api, admin_token, agent_id, "Alpha")
    smith_b = await _smith(api, admin_token, agent_id, "Bravo")
    link_a = await _link(api, admin_token, smith_a)
    await _tap(api, tg, link_a, update_id=1)
    refused = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": smith_b}, "kind": "telegram", "address": str(DANA)})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "address_bound"
    assert refused.json()["error"]["existing_id"] == link_a["id"]
    assert (await _get(api, admin_token, link_a["id"]))["status"] == "active"


async def test_one_live_binding_and_one_catch_all_are_database_constraints(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # DEP-5: not a check before the insert
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    smith = await _smith(api, admin_token, agent_id, "Alpha")
    project_id = await _project_of(runtime, agent_id)

    def row(target_type: str, target_id: str, address: str | None) -> Deployment:
        return Deployment(id=new_id("dep"), project_id=project_id, kind="telegram", target_type=target_type,
                          target_id=target_id, status="active", address=address)

    for first, second in ((row("smith", smith, "42"), row("smith", smith, "42")),
                          (row("agent", agent_id, None), row("agent", agent_id, None))):
        with pytest.raises(IntegrityError):
            async with runtime.transaction() as session:
                session.add(first)
                await session.flush()
                session.add(second)
                await session.flush()
    # A revoked one does not count: the same conversation can be bound again.
    async with runtime.transaction() as session:
        session.add(Deployment(id=new_id("dep"), project_id=project_id, kind="telegram", target_type="smith",
                               target_id=smith, status="revoked", address="42"))
        session.add(row("smith", smith, "42"))


async def _project_of(runtime: Runtime, agent_id: str) -> str:
    async with runtime.transaction() as session:
        agent = await session.get(Agent, agent_id)
        assert agent is not None
        return agent.project_id


async def test_concurrent_catch_all_creates_make_one(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # DEP-5
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    body = {"target": {"type": "agent", "id": agent_id}, "kind": "telegram"}
    answers = await asyncio.gather(*(api.post("/v1/deployments", json=body, headers=bearer(admin_token))
                                     for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"catch_all_exists"}


async def test_deleting_an_agent_revokes_its_catch_all(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None
) -> None:  # DEP-4: the next new sender got a 500 that Telegram retried forever
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    created = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "agent", "id": agent_id}, "kind": "telegram"})
    assert created.status_code == 201
    assert (await api.delete(f"/v1/agents/{agent_id}", headers=bearer(admin_token))).status_code == 204
    catch_all = await _get(api, admin_token, created.json()["id"])
    assert (catch_all["status"], catch_all["revoked_reason"]) == ("revoked", "agent_deleted")
    answer = await post_update(api, tg, private_message("hello?", user_id=EVE, update_id=9))
    assert answer.status_code == 200, answer.text
    async with runtime.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Run))).scalar_one() == 0
    # A new agent can have a catch-all again.
    again = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "agent", "id": await _agent(api, admin_token)}, "kind": "telegram"})
    assert again.status_code == 201, again.text


async def test_a_deleted_deployment_stays_listed_as_revoked(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram
) -> None:  # DEP-2, SL-8's `revoked`
    await connect_bot(api, admin_token)
    smith = await _smith(api, admin_token, await _agent(api, admin_token), "Alpha")
    link = await _link(api, admin_token, smith)
    assert (await api.delete(f"/v1/deployments/{link['id']}", headers=bearer(admin_token))).status_code == 204
    gone = await _get(api, admin_token, link["id"])
    assert (gone["status"], gone["revoked_reason"]) == ("revoked", "deleted") and gone["revoked_at"]
    listed = (await api.get("/v1/deployments", headers=bearer(admin_token))).json()["data"]
    assert [d["id"] for d in listed] == [link["id"]]
    hidden = (await api.get("/v1/deployments", params={"include_revoked": "false"},
                            headers=bearer(admin_token))).json()["data"]
    assert hidden == []
    assert (await api.delete(f"/v1/deployments/{link['id']}", headers=bearer(admin_token))).status_code == 204
    relink = await api.post(f"/v1/deployments/{link['id']}/link", headers=bearer(admin_token))
    assert relink.status_code == 409 and relink.json()["error"]["code"] == "deployment_revoked"
    # Its old start link binds nothing.
    start = link["deep_link"].split("start=")[1]
    await post_update(api, tg, private_message(f"/start {start}", update_id=4))
    assert (await _get(api, admin_token, link["id"]))["status"] == "revoked"


async def test_unknown_setup_keys_are_refused_and_patch_writes_what_it_accepts(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime
) -> None:  # ID-5, REN-1
    await connect_bot(api, admin_token)
    agent_id = await _agent(api, admin_token)
    smith = await _smith(api, admin_token, agent_id, "Alpha")
    refused = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": smith}, "kind": "telegram", "setup": {"mode": "start_token", "colour": 1}})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_setup"
    assert refused.json()["error"]["field"] == "setup.colour"
    # An email deployment (provisioned here directly: the email channel is not built yet).
    email = Deployment(id=new_id("dep"), project_id=await _project_of(runtime, agent_id), kind="email",
                       target_type="smith", target_id=smith, status="active", address="pa@example.com")
    async with runtime.transaction() as session:
        session.add(email)
    patched = await api.patch(f"/v1/deployments/{email.id}", headers=bearer(admin_token),
                              json={"owner_email": "dana@example.com", "display_name": "Dana's PA"})
    assert patched.status_code == 200, patched.text
    got = await _get(api, admin_token, email.id)
    assert got["owner_email"] == "dana@example.com" and got["display_name"] == "Dana's PA"


async def _bound_smith(api: httpx.AsyncClient, tg: FakeTelegram, admin_token: str, **agent: Any) -> dict[str, Any]:
    await connect_bot(api, admin_token)
    smith = await _smith(api, admin_token, await _agent(api, admin_token, **agent), "Dana's PA")
    link = await _link(api, admin_token, smith)
    await _tap(api, tg, link, update_id=1)
    return {"smith_id": smith, "deployment_id": link["id"]}


async def _schedule(api: httpx.AsyncClient, token: str, smith_id: str, text: str, **extra: Any) -> httpx.Response:
    return await api.post(f"/v1/smiths/{smith_id}/schedules", headers=bearer(token), json={
        "name": "morning briefing", "cron": "0 8 * * *", "input": [{"role": "user", "content": text}], **extra})


async def test_a_scheduled_run_delivers_its_reply_to_the_bound_chat(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # SCH-2 with the built-in model: the morning briefing arrives
    bound = await _bound_smith(api, tg, admin_token)
    created = await _schedule(api, admin_token, bound["smith_id"], "good morning briefing")
    assert created.status_code == 201, created.text
    fired = await api.post(f"/v1/smiths/{bound['smith_id']}/schedules/{created.json()['id']}/run_now",
                           headers=bearer(admin_token))
    assert fired.status_code == 202, fired.text
    await wait_until(lambda: "You said: good morning briefing" in texts_to(tg, DANA), "the briefing in the chat")
    # An API run on the same smith is delivered there too.
    run = await api.post(f"/v1/smiths/{bound['smith_id']}/runs", headers=bearer(admin_token),
                         json={"input": [{"role": "user", "content": "from the API"}]})
    assert run.status_code == 202, run.text
    await wait_until(lambda: "You said: from the API" in texts_to(tg, DANA), "the API run's reply in the chat")


async def test_a_scheduled_runs_approval_prompt_reaches_the_chat_and_its_owner_decides(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # SCH-2, APR-1, APR-2
    bound = await _bound_smith(api, tg, admin_token, approval_required_tools=["memory_write"])
    created = await _schedule(api, admin_token, bound["smith_id"], "/remember plan = launch")
    await api.post(f"/v1/smiths/{bound['smith_id']}/schedules/{created.json()['id']}/run_now",
                   headers=bearer(admin_token))
    prompt = await wait_until(lambda: next((m for m in tg.sent_messages if m["text"].startswith("Approve")), None),
                              "the approval prompt in the chat")
    approve = prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await post_update(api, tg, callback_query(approve, user_id=999, update_id=20))
    await wait_until(lambda: any(a.get("text") == "Only the owner can decide." for a in tg.callback_answers),
                     "a stranger's tap refused")
    await post_update(api, tg, callback_query(approve, message_id=int(prompt["message_id"]), update_id=21))
    await wait_until(lambda: "Remembered plan." in texts_to(tg, DANA), "the approved tool's reply")


async def test_several_conversations_the_most_recent_wins_unless_the_schedule_names_one(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # SCH-2: the documented rule
    await connect_bot(api, admin_token)
    smith = await _smith(api, admin_token, await _agent(api, admin_token), "Dana's PA")
    first = await _link(api, admin_token, smith)
    second = await _link(api, admin_token, smith)
    await _tap(api, tg, first, user_id=DANA, update_id=1)
    await _tap(api, tg, second, user_id=EVE, update_id=2)
    await post_update(api, tg, private_message("hi from dana", user_id=DANA, update_id=3))
    await wait_until(lambda: "You said: hi from dana" in texts_to(tg, DANA), "dana's reply")

    by_default = await _schedule(api, admin_token, smith, "default rule")
    await api.post(f"/v1/smiths/{smith}/schedules/{by_default.json()['id']}/run_now", headers=bearer(admin_token))
    await wait_until(lambda: "You said: default rule" in texts_to(tg, DANA), "the most recently active chat")

    named = await _schedule(api, admin_token, smith, "named rule", deployment_id=second["id"])
    assert named.status_code == 201 and named.json()["deployment_id"] == second["id"]
    await api.post(f"/v1/smiths/{smith}/schedules/{named.json()['id']}/run_now", headers=bearer(admin_token))
    await wait_until(lambda: "You said: named rule" in texts_to(tg, EVE), "the named conversation")
    assert "You said: default rule" not in texts_to(tg, EVE)
    assert "You said: named rule" not in texts_to(tg, DANA)

    foreign = await _schedule(api, admin_token, smith, "x", deployment_id="dep_nothing")
    assert foreign.status_code == 422 and foreign.json()["error"]["code"] == "invalid_delivery_deployment"


async def test_a_scheduled_runs_edit_takes_the_owners_next_message(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:  # SCH-2, APR-2: the run has no chat of its own, the owner's correction still reaches it
    bound = await _bound_smith(api, tg, admin_token, approval_required_tools=["memory_write"])
    created = await _schedule(api, admin_token, bound["smith_id"], "/remember plan = launch")
    await api.post(f"/v1/smiths/{bound['smith_id']}/schedules/{created.json()['id']}/run_now",
                   headers=bearer(admin_token))
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
    assert [(r["source"], r["status"]) for r in runs] == [("schedule", "completed")]  # no second run


async def test_a_scheduled_run_that_used_the_send_tool_is_not_delivered_twice(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None
) -> None:  # SCH-2, DEP-6: the model wrote to the person itself; its closing words stay on the run
    bound = await _bound_smith(api, tg, admin_token)
    created = await _schedule(api, admin_token, bound["smith_id"],
                              '/tool telegram_send_message {"text": "Your briefing: all clear"}')
    await api.post(f"/v1/smiths/{bound['smith_id']}/schedules/{created.json()['id']}/run_now",
                   headers=bearer(admin_token))
    await wait_until(lambda: "Your briefing: all clear" in texts_to(tg, DANA), "the tool's message")
    run = await wait_until(lambda: _completed_schedule_run(api, admin_token), "the run's end")
    assert run["output"]["text"] == "Message queued for delivery on telegram."
    await asyncio.sleep(0.5)  # the deliverer would have sent a second message by now
    assert [t for t in texts_to(tg, DANA) if "connected" not in t] == ["Your briefing: all clear"]


async def _completed_schedule_run(api: httpx.AsyncClient, token: str) -> dict[str, Any] | None:
    runs = (await api.get("/v1/runs", params={"source": "schedule"}, headers=bearer(token))).json()["data"]
    return runs[0] if runs and runs[0]["status"] == "completed" else None
