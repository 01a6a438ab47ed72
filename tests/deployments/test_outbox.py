"""The outbox records sends that end together in one transaction, each with its own run event."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from app.services.runtime import Runtime
from models import OutboxEntry, RunEvent
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, texts_to, wait_until
from tests.fakes.telegram import FakeTelegram, private_message

CHATS = [7100 + i for i in range(8)]


async def test_sends_that_end_together_are_recorded_together(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None
) -> None:  # DEP-4 replies reach every sender once; the outbox records each send
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    created = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                      "kind": "telegram"}, headers=bearer(admin_token))
    assert created.status_code == 201
    tg.hold("sendMessage")
    posted = await asyncio.gather(*[post_update(api, tg, private_message(f"hello {chat}", user_id=chat,
                                                                         update_id=chat)) for chat in CHATS])
    assert {r.status_code for r in posted} == {200}
    await wait_until(lambda: tg.holding == len(CHATS), "every reply in flight at once")
    tg.release()
    await wait_until(lambda: all(texts_to(tg, chat) == [f"You said: hello {chat}"] for chat in CHATS),
                     "one reply in every chat")

    async def all_recorded() -> list[OutboxEntry] | None:
        async with runtime.transaction() as session:
            sent = (await session.execute(select(OutboxEntry).where(OutboxEntry.status == "sent"))).scalars().all()
        return list(sent) if len(sent) == len(CHATS) else None

    entries = await wait_until(all_recorded, "every send recorded")
    async with runtime.transaction() as session:
        events = (await session.execute(select(RunEvent).where(RunEvent.type == "delivery.sent"))).scalars().all()
    assert all(entry.provider_message_id for entry in entries)
    assert sorted(event.data["outbox_id"] for event in events) == sorted(entry.id for entry in entries)
    assert {event.run_id for event in events} == {entry.run_id for entry in entries}
    # Recorded in fewer transactions than sends: entries recorded together share their sent_at.
    assert len({entry.sent_at for entry in entries}) < len(entries)

