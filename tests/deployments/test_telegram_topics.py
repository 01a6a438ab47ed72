"""Telegram forum topics: a reply goes back into the topic the message came from, and each topic is a
history of its own (issue 14 step 0: a run carries its conversation, thread included)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, wait_until
from tests.fakes.telegram import FAKE_BOT_USERNAME, FakeTelegram

GROUP = -1001987654321


def topic_message(text: str, *, topic: int, update_id: int) -> dict[str, Any]:
    mention = f"@{FAKE_BOT_USERNAME}"
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "message_thread_id": topic, "is_topic_message": True,
        "from": {"id": 6662345, "is_bot": False, "first_name": "Rui"},
        "chat": {"id": GROUP, "type": "supergroup", "title": "Ops team", "is_forum": True},
        "text": f"{mention} {text}", "entities": [{"type": "mention", "offset": 0, "length": len(mention)}]}}


async def test_a_reply_goes_back_into_its_topic(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, running: None
) -> None:
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Ops"}, headers=bearer(admin_token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Ops PA"},
                            headers=bearer(admin_token))).json()
    bound = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": {"type": "smith", "id": smith["id"]}, "kind": "telegram", "address": str(GROUP)})
    assert bound.status_code == 201, bound.text
    await post_update(api, tg, topic_message("status of the deploy?", topic=77, update_id=501))
    await post_update(api, tg, topic_message("lunch plans?", topic=91, update_id=502))
    sent = await wait_until(lambda: len([m for m in tg.sent_messages if m["text"].startswith("You said")]) >= 2 and
                            tg.sent_messages, "both replies")
    topics = {m["text"]: m["message_thread_id"] for m in sent if m["text"].startswith("You said")}
    assert topics == {"You said: status of the deploy?": 77, "You said: lunch plans?": 91}
    runs = (await api.get("/v1/runs", headers=bearer(admin_token))).json()["data"]
    assert len({r["metadata"]["thread_id"] for r in runs}) == 2  # one history per topic
