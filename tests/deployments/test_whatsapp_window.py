"""WhatsApp after the send (WA-4, issue 16 §6 and "Bad input"): the 24-hour window checked before Graph is
asked, Graph's own 131047, delivery statuses on the delivery, an expired token on the integration, and a
polite answer to what the product cannot read. The /v1 API in-process, real workers and outbox, the fake
Graph API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from app.services.runtime import Runtime
from models import ConversationActivity
from models.types import utcnow
from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.deployments.whatsapp_helpers import (  # noqa: F401 (graph and settings are fixtures)
    DANA,
    bound,
    graph_fixture,
    post,
    settings_with_graph,
    texts_to,
)
from tests.fakes import whatsapp as fake_wa
from tests.fakes.whatsapp import FakeGraph

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp" / "in"
STICKER = (FIXTURES / "unreadable_sticker.json").read_bytes()
IMAGE_WITH_CAPTION = (FIXTURES / "image_with_caption.json").read_bytes()


async def deliveries(api: httpx.AsyncClient, token: str, **params: str) -> list[dict[str, Any]]:
    return list((await api.get("/v1/deliveries", params=params, headers=bearer(token))).json()["data"])


async def say_proactively(api: httpx.AsyncClient, token: str, smith_id: str, text: str) -> str:
    """A run the person did not start (as a schedule's): the smith writes first with its send tool."""
    body = {"input": [{"role": "user", "content": "/tool whatsapp_send_message " + json.dumps({"text": text})}]}
    created = await api.post(f"/v1/smiths/{smith_id}/runs", json=body, headers=bearer(token))
    assert created.status_code in (200, 201, 202), created.text
    return str(created.json()["id"])


async def age_window(runtime: Runtime, wa_id: str, hours: float) -> None:
    """Dana last wrote ``hours`` ago (the clock cannot be waited for in a test)."""
    async with runtime.transaction() as session:
        await session.execute(update(ConversationActivity).where(ConversationActivity.address == wa_id)
                              .values(last_inbound_at=utcnow() - timedelta(hours=hours)))


async def test_a_send_outside_the_window_fails_at_once_with_a_clear_reason(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, runtime: Runtime, running: None
) -> None:  # WA-4 (compass B7), DEP-6
    setup = await bound(api, graph, admin_token)
    await say_proactively(api, admin_token, setup["smith_id"], "Reminder: stand-up at 10")
    await wait_until(lambda: "Reminder: stand-up at 10" in texts_to(graph, DANA), "the send inside the window")

    dep_url = f"/v1/deployments/{setup['deployment']['id']}"
    ends = datetime.fromisoformat((await api.get(dep_url, headers=bearer(admin_token))).json()["reply_window_ends_at"])
    assert timedelta(hours=23, minutes=59) < ends - utcnow() <= timedelta(hours=24)  # Dana just wrote

    await age_window(runtime, DANA, hours=24.5)
    listed = (await api.get("/v1/deployments", params={"kind": "whatsapp"}, headers=bearer(admin_token))).json()
    assert datetime.fromisoformat(listed["data"][0]["reply_window_ends_at"]) < utcnow()  # closed half an hour ago
    calls_before = len(graph.calls)
    run_id = await say_proactively(api, admin_token, setup["smith_id"], "Reminder: retro at 4")
    dead = await wait_until(lambda: _dead(api, admin_token), "the refused delivery")
    assert dead["last_error"].startswith("whatsapp_window_closed: the person last wrote at ")
    assert "within 24 hours" in dead["last_error"] and dead["run_id"] == run_id and dead["attempts"] == 1
    assert [c for c in graph.calls[calls_before:] if c[0] == "POST"] == []  # Graph was never asked
    events = (await api.get(f"/v1/runs/{run_id}/events", headers=bearer(admin_token))).json()["data"]
    assert any(e["type"] == "delivery.dead" and "whatsapp_window_closed" in e["data"]["error"] for e in events)
    failed = (await api.get("/v1/events", params={"type": "delivery.failed"}, headers=bearer(admin_token))).json()
    assert failed["data"][0]["data"]["error"] == dead["last_error"]

    # Dana writes again: the window opens and the smith's answer goes out.
    await post(api, fake_wa.text_message("back again"))
    await wait_until(lambda: "You said: back again" in texts_to(graph, DANA), "the reply in the new window")


async def _dead(api: httpx.AsyncClient, token: str) -> dict[str, Any] | None:
    found = await deliveries(api, token, status="dead")
    return found[0] if found else None


async def test_graph_s_own_window_refusal_and_a_late_failed_status_are_dead_letters(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA-4: Graph's 131047 at send time, and failed statuses arriving later
    await bound(api, graph, admin_token)
    await wait_until(lambda: texts_to(graph, DANA), "the binding confirmation")
    graph.window_closed_next(times=2)  # the read receipt of the message below takes one
    await post(api, fake_wa.text_message("first"))
    dead = await wait_until(lambda: _dead(api, admin_token), "the refused reply")
    assert dead["last_error"].startswith("whatsapp_window_closed: graph 131047 Re-engagement message: ")
    assert "24 hours have passed" in dead["last_error"] and dead["attempts"] == 1  # not retried

    await post(api, fake_wa.text_message("second"))
    await wait_until(lambda: "You said: second" in texts_to(graph, DANA), "the next reply")
    reply = next(m for m in graph.sent_to(DANA) if m.get("text", {}).get("body") == "You said: second")
    # Accepted by Graph, then reported failed: the delivery becomes a dead letter with Graph's reason.
    failure = fake_wa.status(reply["wamid"], "failed", error=(131026, "Message undeliverable",
                                                               "The recipient is not on WhatsApp."))
    assert (await post(api, failure)).status_code == 200
    late = await wait_until(lambda: _by_wamid(api, admin_token, reply["wamid"], "dead"), "the late failure")
    assert late["last_error"] == ("blocked: graph 131026 Message undeliverable: The recipient is not on WhatsApp. "
                                  "(reported after sending)")


async def _by_wamid(api: httpx.AsyncClient, token: str, wamid: str, status: str) -> dict[str, Any] | None:
    return next((d for d in await deliveries(api, token) if d["provider_message_id"] == wamid
                 and d["status"] == status), None)


async def test_sent_delivered_and_read_are_recorded_on_the_delivery_never_backwards(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA issue §6 "Statuses"
    await bound(api, graph, admin_token)
    await post(api, fake_wa.text_message("status please"))
    await wait_until(lambda: "You said: status please" in texts_to(graph, DANA), "the reply")
    wamid = next(m["wamid"] for m in graph.sent_to(DANA) if m.get("text", {}).get("body") == "You said: status please")
    await wait_until(lambda: _by_wamid(api, admin_token, wamid, "sent"), "the delivery recorded as sent")
    for state in ("sent", "read", "delivered"):  # Meta may deliver statuses out of order
        assert (await post(api, fake_wa.status(wamid, state))).status_code == 200
    entry = await _by_wamid(api, admin_token, wamid, "sent")
    assert entry is not None and entry["receipt"] == "read" and entry["receipt_at"]
    # A status for a message this server never sent is answered 200 and changes nothing.
    assert (await post(api, fake_wa.status("wamid.HBgLNEVERSENT00001", "failed",
                                           error=(131047, "Re-engagement message", "")))).status_code == 200
    assert await deliveries(api, admin_token, status="dead") == []


async def test_an_expired_token_shows_on_the_integration_and_is_not_retried(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA issue "Bad input": the integration shows it at once
    await bound(api, graph, admin_token)
    await wait_until(lambda: texts_to(graph, DANA), "the binding confirmation")
    graph.expire_token()
    sends_before = len([c for c in graph.calls if c[0] == "POST" and c[1].endswith("/messages")])
    await post(api, fake_wa.text_message("are you there?"))
    dead = await wait_until(lambda: _dead(api, admin_token), "the refused reply")
    assert dead["last_error"].startswith("unauthorized: graph 190 ") and dead["attempts"] == 1
    status = (await api.get("/v1/tenant/whatsapp", headers=bearer(admin_token))).json()
    assert status["status"] == "error" and status["last_error"] == dead["last_error"]
    events = (await api.get("/v1/events", params={"type": "integration.error"}, headers=bearer(admin_token))).json()
    assert [e["data"]["kind"] for e in events["data"]] == ["whatsapp"]
    replies = [c for c in graph.calls if c[0] == "POST" and c[1].endswith("/messages")][sends_before:]
    assert len(replies) <= 2  # the reply (refused) and the read receipt: nothing retried


async def test_what_cannot_be_read_gets_a_polite_answer_not_a_run(
    api: httpx.AsyncClient, admin_token: str, graph: FakeGraph, running: None
) -> None:  # WA issue "Bad input": stickers, locations, voice
    setup = await bound(api, graph, admin_token)
    assert (await post(api, STICKER)).status_code == 200
    await wait_until(lambda: any("can't read stickers" in t for t in texts_to(graph, DANA)), "the polite answer")
    runs = (await api.get("/v1/runs", params={"smith_id": setup["smith_id"]}, headers=bearer(admin_token))).json()
    assert runs["data"] == []  # nothing reached the model
    assert (await post(api, IMAGE_WITH_CAPTION)).status_code == 200
    await wait_until(lambda: any("The whiteboard from today" in t for t in texts_to(graph, DANA)), "the caption read")
