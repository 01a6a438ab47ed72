"""The console as a non-developer uses it, in headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import CONSOLE_PASSWORD, Server

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PASSWORD = CONSOLE_PASSWORD


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
    expect(page.get_by_role("alertdialog")).to_be_hidden()  # closed, so the next click finds the new dialog
    expect(page.get_by_role("row", name=re.compile("Dana's assistant"))).to_be_visible()
    page.get_by_role("row", name=re.compile("Dana's assistant")).get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No smiths yet")).to_be_visible(timeout=15_000)  # two workers and Redis, under load

    # The setup link works once.
    page.goto(server.setup_link())
    expect(page.get_by_text("invalid, used or expired")).to_be_visible()
