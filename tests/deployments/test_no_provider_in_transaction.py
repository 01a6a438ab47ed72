"""No provider call while a transaction is open (issue 13 §2): the SQLite writer's watchdog catches
a transaction that waits on the network, and Telegram's connect and disconnect call the Bot API
between two short transactions instead of inside the request's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from app.services.runtime import Runtime
from models.inline_sqlite import WATCHDOG
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, run_fake_telegram

LATENCY_S = 0.4  # each Bot API call of the slow fake
BOUND_S = 0.3


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram(latency_s=LATENCY_S) as fake:
        yield fake


@pytest.fixture
def sqlite_only(runtime: Runtime) -> None:
    if not runtime.settings.is_sqlite:
        pytest.skip("the watchdog guards the SQLite writer")


async def test_a_transaction_awaiting_a_slow_provider_is_caught(runtime: Runtime, tg: FakeTelegram,
                                                                sqlite_only: None) -> None:
    WATCHDOG.configure(BOUND_S, strict=True)
    async with runtime.transaction() as session, httpx.AsyncClient() as client:
        await session.execute(text("UPDATE project SET name = name"))
        answer = await client.post(f"{tg.url}/bot{FAKE_TOKEN}/getMe")  # the provider, inside
        assert answer.status_code == 200
    caught = WATCHDOG.take()
    assert len(caught) == 1 and "test_a_transaction_awaiting_a_slow_provider_is_caught" in caught[0]


async def test_telegram_connect_and_disconnect_call_the_bot_api_outside_transactions(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, sqlite_only: None
) -> None:  # TG-1
    WATCHDOG.configure(BOUND_S, strict=True)
    view = await connect_bot(api, admin_token)  # getMe + setWebhook: 2 × LATENCY_S at the fake
    assert view["bot_username"] and tg.calls_to("setWebhook")
    deleted = await api.delete("/v1/tenant/telegram", headers=bearer(admin_token))
    assert deleted.status_code == 204
    assert tg.calls_to("deleteWebhook")
    assert WATCHDOG.take() == []
    gone = await api.get("/v1/tenant/telegram", headers=bearer(admin_token))
    assert gone.json()["configured"] is False
