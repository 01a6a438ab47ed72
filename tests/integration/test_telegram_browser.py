"""A person connects a bot, creates a deep link for a smith, opens it, and chats (issue: Telegram)."""

from __future__ import annotations

import random
import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.telegram import FAKE_BOT_USERNAME, FAKE_TOKEN, private_message
from tests.integration.conftest import Server, sign_in_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]



def _wait_for(check, what: str, wait_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + wait_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_connect_bot_create_deep_link_and_chat(server: Server, page: Page) -> None:  # CON-2, CON-4, TG-1, TG-2
    tg = server.telegram
    assert tg is not None
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    agent = httpx.post(f"{server.url}/v1/agents", json={"name": "Greeter"}, headers=headers).json()
    smith = httpx.post(f"{server.url}/v1/smiths", json={"agent_id": agent["id"], "name": "Telegram PA"},
                       headers=headers).json()
    sign_in_console(page, server)

    # Settings → Integrations: paste the bot token, see it connected (polling: no public HTTPS URL here).
    page.get_by_role("link", name="Integrations", exact=True).click()
    page.fill("#telegram-bot-token", FAKE_TOKEN)
    page.click("#connect-telegram")
    expect(page.get_by_text(f"@{FAKE_BOT_USERNAME}", exact=True)).to_be_visible()
    expect(page.get_by_text("long polling (no public HTTPS URL)")).to_be_visible()
    assert FAKE_TOKEN not in page.content()

    # The smith's Deployments tab makes a deep link with a copy button and a QR code.
    page.goto(f"{server.url}/smiths/{smith['id']}")
    page.click("#create-telegram-link")
    link = page.locator("#deep-link")
    expect(link).to_contain_text(f"https://t.me/{FAKE_BOT_USERNAME}?start=")
    expect(page.get_by_alt_text("QR code of the deep link")).to_be_visible()
    token = link.inner_text().split("start=")[1].strip()

    # The person opens the link in Telegram (the bot receives /start <token>) and says hello.
    chat = random.randint(10_000_000, 99_999_999)
    tg.queue_update(private_message(f"/start {token}", user_id=chat, first_name="Ana"))
    _wait_for(lambda: any("connected" in m["text"] for m in tg.sent_messages if m["chat_id"] == chat), "binding")
    tg.queue_update(private_message("hello from the phone", user_id=chat, first_name="Ana"))
    _wait_for(lambda: any(m["text"] == "You said: hello from the phone" for m in tg.sent_messages
                          if m["chat_id"] == chat), "the smith's reply")

    # The console shows the deployment active, bound to that chat.
    page.get_by_role("link", name="Deployments", exact=True).click()
    row = page.get_by_role("row", name=re.compile("Telegram PA"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(str(chat))

    # A schedule on this smith says where its reply goes, and Run now delivers it to the chat (SCH-2).
    page.goto(f"{server.url}/smiths/{smith['id']}")
    page.get_by_role("tab", name="Schedules").click()
    page.get_by_role("button", name="New schedule").first.click()
    page.fill("#schedule-name", "Morning briefing")
    page.fill("#schedule-message", "morning briefing please")
    expect(page.get_by_role("dialog").get_by_text("Replies go to")).to_be_visible()
    expect(page.locator("#schedule-deployment")).to_contain_text("most recently active conversation")
    page.click("#schedule-save")
    schedule_row = page.get_by_role("row", name=re.compile("Morning briefing"))
    expect(schedule_row).to_contain_text(f"Most recently active: Telegram · {chat}")
    schedule_row.get_by_role("button", name="Run now").click()
    _wait_for(lambda: any(m["text"] == "You said: morning briefing please" for m in tg.sent_messages
                          if m["chat_id"] == chat), "the scheduled reply in the chat")
