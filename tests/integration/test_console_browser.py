"""The console as a non-developer uses it, in headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "a long console password"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./test.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    opened.screenshot(path=str(tmp_path / "last.png"))
    context.close()


def test_claim_sign_in_create_agent_and_smith(server: Server, page: Page) -> None:
    # Protected pages send a stranger to the sign-in page.
    page.goto(f"{server.url}/agents")
    expect(page).to_have_url(re.compile(r"/login/?$"))

    # The operator opens the one-time setup link from the server log and sets the password.
    page.goto(server.setup_link())
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page).to_have_url(re.compile(r"/deployments/?$"))
    expect(page.get_by_text("No deployments yet")).to_be_visible()

    # Agents: empty state, then create one.
    page.get_by_role("link", name="Agents", exact=True).click()
    expect(page.get_by_text("No agents yet")).to_be_visible()
    page.get_by_role("button", name="New agent").first.click()
    page.fill("#agent-name", "Concierge")
    page.get_by_placeholder("You are a concise").fill("Greet warmly, answer briefly.")
    page.click("#agent-save")
    expect(page.get_by_role("cell", name=re.compile("Concierge"))).to_be_visible()

    # Smiths: create one from that agent.
    page.get_by_role("link", name="Smiths", exact=True).click()
    expect(page.get_by_text("No smiths yet")).to_be_visible()
    page.get_by_role("button", name="New smith").first.click()
    page.fill("#smith-name", "Dana's assistant")
    page.click("#smith-save")
    row = page.get_by_role("row", name=re.compile("Dana's assistant"))
    expect(row).to_be_visible()
    expect(row.get_by_text("Concierge")).to_be_visible()

    # Sign out, sign back in with the chosen password: the smith is still listed.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    page.fill("#password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("wrong password")).to_be_visible()
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/deployments/?$"))
    page.get_by_role("link", name="Smiths", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("Dana's assistant"))).to_be_visible()

    # Deleting asks first; cancelling keeps the smith, confirming removes it.
    page.get_by_role("row", name=re.compile("Dana's assistant")).get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("cannot be undone")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("row", name=re.compile("Dana's assistant"))).to_be_visible()
    page.get_by_role("row", name=re.compile("Dana's assistant")).get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No smiths yet")).to_be_visible()

    # The setup link works once.
    page.goto(server.setup_link())
    expect(page.get_by_text("invalid, used or expired")).to_be_visible()
