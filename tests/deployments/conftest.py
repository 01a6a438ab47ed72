"""Telegram deployments end to end: the /v1 API in-process, real workers and outbox, and
python-telegram-bot talking to the fake Bot API server (tests/fakes/telegram.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.services.background import background
from app.services.runtime import Runtime
from app.settings import Settings
from tests.conftest import bearer
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, run_fake_telegram

PUBLIC_HTTPS = "https://bots.example.com"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake


@pytest.fixture
def public_url() -> str:
    return PUBLIC_HTTPS  # webhook mode; polling tests override this fixture


@pytest.fixture
def settings(settings: Settings, tg: FakeTelegram, public_url: str) -> Settings:
    return dataclasses.replace(settings, telegram_api_url=tg.url, public_url=public_url)


@pytest.fixture
async def running(runtime: Runtime) -> AsyncIterator[None]:
    async with background(runtime, workers=2, poll_interval_s=0.05, lease_seconds=30, scheduler=False):
        yield


async def wait_until(check: Callable[[], Any], what: str, wait_s: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def connect_bot(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def webhook_secret(tg: FakeTelegram) -> str:
    return str(tg.calls_to("setWebhook")[-1]["secret_token"])


async def post_update(api: httpx.AsyncClient, tg: FakeTelegram, update: dict[str, Any], *,
                      secret: str | None = None, tenant: str = "default") -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret if secret is not None else webhook_secret(tg)}
    return await api.post(f"/v1/telegram/webhook/{tenant}", json=update, headers=headers)


def texts_to(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m["text"] for m in tg.sent_messages if str(m.get("chat_id")) == str(chat_id)]
