"""MCP caller tokens in headless Chromium against the real server (issue 13, MCP-3): a person makes an
MCP endpoint, gives a client its own caller token, sees that it works at that endpoint only, revokes
it after a confirmation, and finds the removed deployment behind the Deployments page's switch."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import Server, sign_in_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "browser-test", "version": "1"}}}


@pytest.fixture
def smith(server: Server) -> Iterator[str]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        agent = api.post("/v1/agents", json={"name": "Helper"})
        assert agent.status_code == 201, agent.text
        created = api.post("/v1/smiths", json={"agent_id": agent.json()["id"], "name": "MCP smith"})
        assert created.status_code == 201, created.text
        yield created.json()["id"]
        # Leave the console as found: the other browser tests expect empty Agents and Smiths pages.
        api.delete(f"/v1/smiths/{created.json()['id']}")
        api.delete(f"/v1/agents/{agent.json()['id']}")


def _initialize(server: Server, endpoint: str, token: str) -> httpx.Response:
    return httpx.post(endpoint, json=INITIALIZE, timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"})


def test_give_an_mcp_client_its_own_caller_token_and_revoke_it(server: Server, page: Page, smith: str) -> None:
    sign_in_console(page, server)
    page.goto(f"{server.url}/smiths/{smith}")
    page.click("#create-mcp-endpoint")
    expect(page.get_by_text("MCP endpoint", exact=True)).to_be_visible()
    listed = httpx.get(f"{server.url}/v1/deployments", params={"target_id": smith}, timeout=30,
                       headers={"Authorization": f"Bearer {server.admin_token}"}).json()["data"]
    endpoint = listed[0]["endpoint_url"]
    expect(page.get_by_text(endpoint).first).to_be_visible()

    # Caller tokens: a name, then the token shown once with a copy button.
    page.get_by_role("button", name="Caller tokens").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("No caller tokens yet.")).to_be_visible()
    page.fill("#caller-subject", "alice-laptop")
    page.click("#create-caller-token")
    token = page.locator("#caller-token-value")
    expect(token).to_contain_text("ic_mcp_")
    expect(dialog.get_by_role("button", name="Copy token")).to_be_visible()
    value = token.inner_text().strip()
    expect(dialog.get_by_role("row", name=re.compile("alice-laptop"))).to_be_visible()

    # It works at this endpoint, and nowhere else in the project.
    assert _initialize(server, endpoint, value).status_code == 200
    elsewhere = httpx.get(f"{server.url}/v1/smiths", headers={"Authorization": f"Bearer {value}"}, timeout=30)
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "mcp_token_scope"

    # Revoking asks first; then the client is refused.
    dialog.get_by_role("row", name=re.compile("alice-laptop")).get_by_role("button", name="Revoke").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(dialog.get_by_text("No caller tokens yet.")).to_be_visible()
    assert _initialize(server, endpoint, value).status_code == 401
    dialog.get_by_role("button", name="Done").click()

    # Removing the endpoint: it leaves the smith's tab, and stays listed as revoked behind a switch.
    row = page.get_by_role("row").filter(has_text="mcp")
    row.get_by_role("button", name="Remove").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Not deployed anywhere yet.")).to_be_visible()
    page.get_by_role("link", name="Deployments", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("MCP smith"))).to_have_count(0)
    page.get_by_role("switch").click()
    revoked = page.get_by_role("row", name=re.compile("MCP smith"))
    expect(revoked).to_contain_text("revoked")
    expect(revoked).to_contain_text("deleted ·")
