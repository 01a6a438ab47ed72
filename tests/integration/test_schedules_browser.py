"""A smith's Schedules tab in headless Chromium against the real server (CON-3, SCH-1, SCH-3, SCH-4).

Runs on both server shapes (SQLite; PostgreSQL + Redis with two workers). Signs in whether or not
the console was already claimed by another browser test in this session, and deletes what it made.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import Server, sign_in_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]



@pytest.fixture
def smith(server: Server) -> Iterator[str]:
    headers = {"Authorization": f"Bearer {server.admin_token}", "IC-Api-Version": "2026-05-01"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        agent = api.post("/v1/agents", json={"name": "Briefer"})
        assert agent.status_code == 201, agent.text
        created = api.post("/v1/smiths", json={"agent_id": agent.json()["id"], "name": "Morning smith"})
        assert created.status_code == 201, created.text
        yield created.json()["id"]
        # Leave the console as found: the other browser test expects empty Agents and Smiths pages.
        api.delete(f"/v1/smiths/{created.json()['id']}")
        api.delete(f"/v1/agents/{agent.json()['id']}")


def test_create_a_schedule_see_its_meaning_and_run_it_now(server: Server, page: Page, smith: str) -> None:
    sign_in_console(page, server)
    page.goto(f"{server.url}/smiths/{smith}")
    page.get_by_role("tab", name="Schedules").click()
    expect(page.get_by_text("No schedules yet")).to_be_visible()  # CON-3: a helpful empty state
    page.get_by_role("button", name="New schedule").first.click()

    # Validation as you type, by the service's own rules: the error names the problem...
    page.fill("#schedule-name", "Morning briefing")
    page.fill("#schedule-cron", "0 25 * * *")
    expect(page.get_by_text("hour 25 is out of range 0-23")).to_be_visible()
    expect(page.locator("#schedule-save")).to_be_disabled()
    page.fill("#schedule-timezone", "Europe/Atlantis")
    expect(page.get_by_text("unknown time zone 'Europe/Atlantis'")).to_be_visible()
    # ...and a valid entry shows what it means and when it fires next.
    page.fill("#schedule-cron", "0 8 * * *")
    page.fill("#schedule-timezone", "Europe/Athens")
    expect(page.locator("#schedule-preview")).to_have_text("At 08:00, every day (Europe/Athens)")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(re.compile(r"Next: .*08:00 \(0[56]:00 UTC\)"))).to_be_visible()
    page.fill("#schedule-message", "Compose my morning briefing: calendar, news, reminders.")
    page.click("#schedule-save")

    row = page.get_by_role("row", name=re.compile("Morning briefing"))
    expect(row).to_be_visible()
    expect(row.get_by_text("At 08:00, every day (Europe/Athens)")).to_be_visible()
    expect(row.get_by_text(re.compile(r", 08:00 \(0[56]:00 UTC\)")).first).to_be_visible()
    expect(row.get_by_text("No runs yet")).to_be_visible()

    # Run now: a run appears; its status links to the run and follows it to completion (SCH-4).
    row.get_by_role("button", name="Run now").click()
    status = row.get_by_role("link", name=re.compile("queued|running|completed"))
    expect(status).to_be_visible()
    expect(status).to_have_attribute("href", re.compile(r"/runs/run_[0-9a-z]{26}$"))
    expect(row.get_by_role("link", name="completed")).to_be_visible(timeout=60_000)

    # Pausing is a switch (SCH-3); the schedule then has no next time.
    row.get_by_role("switch").click()
    expect(row.get_by_text("Paused")).to_be_visible()
    row.get_by_role("switch").click()
    expect(row.get_by_text(re.compile(r", 08:00 \(0[56]:00 UTC\)")).first).to_be_visible()

    run_href = row.get_by_role("link", name="completed").get_attribute("href")
    row.get_by_role("link", name="completed").click()
    expect(page).to_have_url(re.compile(re.escape(run_href or "/runs/run_") + "/?$"))

    # Delete asks first, then the empty state is back.
    page.go_back()
    page.get_by_role("tab", name="Schedules").click()
    row = page.get_by_role("row", name=re.compile("Morning briefing"))
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No schedules yet")).to_be_visible()


def test_the_server_fires_a_cron_schedule_on_its_minute(server: Server) -> None:  # SCH-2, SCH-4
    # The product's own scheduler (the lifespan's leader), a real minute: at most ~70 s.
    headers = {"Authorization": f"Bearer {server.admin_token}", "IC-Api-Version": "2026-05-01"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        agent = api.post("/v1/agents", json={"name": "Ticker"}).json()
        smith = api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Every minute"}).json()
        try:
            schedule = api.post(f"/v1/smiths/{smith['id']}/schedules", json={
                "name": "tick", "cron": "* * * * *", "timezone": "UTC",
                "input": [{"role": "user", "content": "tick"}]})
            assert schedule.status_code == 201, schedule.text
            slot = schedule.json()["next_fire_at"]
            deadline = time.monotonic() + 90
            run: dict[str, Any] = {}
            while time.monotonic() < deadline:
                listed = api.get("/v1/runs", params={"source": "schedule", "smith_id": smith["id"]}).json()["data"]
                run = next((r for r in listed if r["metadata"]["schedule"]["scheduled_for"] == slot), {})
                if run.get("status") == "completed":
                    break
                time.sleep(1)
            assert run.get("status") == "completed", run
            assert run["metadata"]["schedule_id"] == schedule.json()["id"]
            assert run["metadata"]["schedule"]["trigger"] == "cron"
            view = api.get(f"/v1/smiths/{smith['id']}/schedules/{schedule.json()['id']}").json()
            assert view["last_fired_for"] == slot and view["next_fire_at"] > slot
        finally:
            api.delete(f"/v1/smiths/{smith['id']}")
            api.delete(f"/v1/agents/{agent['id']}")
