"""The Runs pages in headless Chromium: a run waits for approval, the owner approves it in the
console, and the page follows the run to its reply without a reload (APR-1, RUN-1)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import Server, sign_in_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10,
                        headers={"Authorization": f"Bearer {server.admin_token}"})


def wait_status(client: httpx.Client, run_id: str, status: str, wait_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck in {run['status']}"
        time.sleep(0.1)


def test_approve_a_paused_run_from_the_console(server: Server, page: Page) -> None:  # APR-1, RUN-1
    with api(server) as client:
        agent = client.post("/v1/agents", json={"name": "Careful", "approval_required_tools": ["memory_write"]})
        assert agent.status_code == 201, agent.text
        smith = client.post("/v1/smiths", json={"agent_id": agent.json()["id"], "name": "Planner"}).json()
        started = client.post(f"/v1/smiths/{smith['id']}/runs",
                              json={"input": [{"role": "user", "content": "/remember plan = launch"}]})
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        wait_status(client, run_id, "awaiting_approval")

    sign_in_console(page, server)

    # The list shows the run waiting, with its smith and input.
    page.get_by_role("link", name="Runs", exact=True).click()
    row = page.get_by_role("row").filter(has_text=run_id)
    expect(row).to_contain_text("awaiting approval")
    expect(row).to_contain_text("/remember plan = launch")
    expect(row.get_by_role("link", name="Planner")).to_have_attribute("href", f"/smiths/{smith['id']}")

    # The detail page shows the paused call and its arguments.
    row.get_by_role("link", name="/remember plan = launch").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/?$"))
    approval = page.get_by_text("Waiting for your approval")
    expect(approval).to_be_visible()
    expect(page.get_by_text('"value": "launch"').first).to_be_visible()

    # Approve: the page follows the run to its reply by itself (no reload: the marker survives).
    page.evaluate("window.__sameDocument = true")
    page.click("#run-approve")
    expect(page.locator("#run-output")).to_have_text("Remembered plan.", timeout=30_000)
    expect(page.get_by_text("completed", exact=True).first).to_be_visible()
    expect(approval).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert page.evaluate("window.__sameDocument === true")

    with api(server) as client:
        run = client.get(f"/v1/runs/{run_id}").json()
        assert run["status"] == "completed"
        assert run["output"]["text"] == "Remembered plan."
        memory = client.get(f"/v1/smiths/{smith['id']}/memory").json()["data"]
        assert [(m["key"], m["value"]) for m in memory] == [("plan", "launch")]

    # The smith page's link preselects the smith filter.
    page.goto(f"{server.url}/runs?smith_id={smith['id']}")
    expect(page.locator("#runs-smith-filter")).to_have_text("Planner")
    expect(page.get_by_role("row").filter(has_text=run_id)).to_contain_text("completed")
    expect(page.get_by_role("row")).to_have_count(2)  # the header and this smith's one run
