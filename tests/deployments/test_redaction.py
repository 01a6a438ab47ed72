"""Provider credentials never reach error text, answers or logs (issue 13: aiohttp errors quote the
bot URL, and so the token)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from app.services.runtime import Runtime
from channels.redact import REDACTED, install_log_redaction, redact
from models import OutboxEntry
from tests.conftest import bearer
from tests.deployments.conftest import connect_bot, post_update, wait_until, webhook_secret
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, private_message

SECRET_PART = FAKE_TOKEN.split(":", 1)[1]
HOPS = 11  # aiohttp follows 10 redirects, then raises TooManyRedirects quoting the URL


@pytest.fixture(autouse=True)
def redacted_logs() -> Iterator[None]:
    install_log_redaction()  # what app/app.py, app/worker.py and app/bootstrap.py do at start
    yield


async def test_unreachable_bot_api_error_is_redacted_in_the_answer_and_the_log(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tg.redirect_loop_next("getMe", times=HOPS)
    response = await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN}, headers=bearer(admin_token))
    assert response.status_code == 400, response.text
    body = response.json()["error"]
    assert body["code"] == "provider_unreachable"
    assert "TooManyRedirects" in body["message"] and f"/bot{REDACTED}/getMe" in body["message"]
    assert SECRET_PART not in response.text
    assert SECRET_PART not in caplog.text


async def test_outbox_last_error_and_logs_hold_no_bot_token(
    api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    created = await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]},
                                                      "kind": "telegram"}, headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    tg.redirect_loop_next("sendMessage", times=HOPS)
    assert (await post_update(api, tg, private_message("hello", update_id=1))).status_code == 200

    async def failed_once() -> OutboxEntry | None:
        async with runtime.transaction() as session:
            stmt = select(OutboxEntry).where(OutboxEntry.last_error.is_not(None))  # type: ignore[union-attr]
            return (await session.execute(stmt)).scalars().first()

    entry = await wait_until(failed_once, "a failed send recorded")
    assert entry.last_error is not None
    assert "TooManyRedirects" in entry.last_error and f"/bot{REDACTED}/sendMessage" in entry.last_error
    assert SECRET_PART not in entry.last_error
    deliveries = await api.get(f"/v1/runs/{entry.run_id}/events", headers=bearer(admin_token))
    assert SECRET_PART not in deliveries.text
    assert SECRET_PART not in caplog.text
    assert webhook_secret(tg) not in caplog.text  # PTB logs setWebhook's parameters at DEBUG


def test_every_logger_and_traceback_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    url = f"https://api.telegram.org/bot{FAKE_TOKEN}/sendMessage"
    caplog.set_level(logging.INFO)
    # A library's logger, a child of ours, and a traceback whose exception quotes the URL.
    logging.getLogger("aiohttp.client").warning("request to %s failed", url)
    logging.getLogger("ingram.something").info("proxy https://user:hunter22@proxy.example/x?api_key=k1 set")
    try:
        raise RuntimeError(f"Cannot connect: {url}")
    except RuntimeError:
        logging.getLogger("jobs.delivery").exception("channel raised")
    # An access log whose formatter unpacks the arguments keeps their number and types.
    logging.getLogger("tests.access").info('%s - "%s %s HTTP/%s" %d', "192.0.2.1:5000", "POST",
                                             f"/bot{FAKE_TOKEN}/getMe", "1.1", 200)
    assert caplog.records[-1].args == ("192.0.2.1:5000", "POST", f"/bot{REDACTED}/getMe", "1.1", 200)
    assert f"/bot{REDACTED}/sendMessage" in caplog.text
    for secret in (SECRET_PART, "hunter22", "api_key=k1"):
        assert secret not in caplog.text
    assert redact("invalid_auth for xoxb-1234-5678-abcdefgh") == f"invalid_auth for {REDACTED}"
    # The setup link is logged on purpose (the operator reads it there): plain "token=" stays.
    assert redact("https://x.example/setup?token=abc") == "https://x.example/setup?token=abc"


@pytest.mark.parametrize(("line", "secret"), [
    ("rotated to xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAx", "Mi0yLTEyMzQ1Njc4OTAx"),  # a configuration token
    ("refresh_token=xoxe-1-My0xLTEyMzQ1Njc4OTAxMjM0", "My0xLTEyMzQ1Njc4OTAxMjM0"),  # its refresh token
    ('{"text": "/start Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s"}', "Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s"),  # PTB's DEBUG
    ("Hi! My connect code is Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s", "Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s"),
    ("https://t.me/ingram_bot?start=Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s", "Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s"),
])
def test_factory_tokens_and_one_time_start_codes_are_redacted(line: str, secret: str) -> None:  # issue 15 §4
    assert secret not in redact(line) and "[redacted]" in redact(line)
    assert redact("/start hello") == "/start hello"  # a word is no code
