"""A person connects LinkedIn from its card (issue 18, LI-1/LI-3): the card says messaging awaits a Page
admin's consent and LinkedIn's approval; the person makes a one-time consent link (copy button and QR code),
opens it as the Page admin (the fake LinkedIn's consent screen sends the browser back to the server's
callback), and the card then says only LinkedIn's approval is missing; switching messaging on and off asks
first, and the API agrees with what the card says."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.linkedin import ADMIN_URN, CLIENT_ID, CLIENT_SECRET, PAGE_URN
from tests.integration.conftest import Server, sign_in_console

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {server.admin_token}"},
                        timeout=30)


def _linkedin(server: Server) -> dict[str, object]:
    with _api(server) as api:
        return dict(api.get("/tenant/linkedin").json())


def test_connect_linkedin_consent_and_switch_messaging(server: Server, page: Page) -> None:  # LI-1, LI-3
    if _linkedin(server)["configured"]:
        with _api(server) as api:
            assert api.delete("/tenant/linkedin").status_code == 204
    sign_in_console(page, server)
    page.goto(f"{server.url}/settings/integrations")
    card = page.locator("#linkedin-card")
    expect(card.get_by_text("Not connected", exact=True)).to_be_visible()
    expect(card).to_contain_text(f"{server.url}/v1/linkedin/oauth/callback")  # to paste at LinkedIn

    page.fill("#linkedin-client-id", CLIENT_ID)
    page.fill("#linkedin-client-secret", CLIENT_SECRET)
    page.fill("#linkedin-page-urn", PAGE_URN)
    page.click("#connect-linkedin")
    expect(page.get_by_text("LinkedIn connected")).to_be_visible()
    state = card.locator("#linkedin-messaging-state")
    expect(state).to_contain_text("Messaging is off. First a Page admin gives consent")
    expect(card).to_contain_text("Not given yet: make a consent link below")
    expect(card.locator("#linkedin-messaging-switch")).to_be_disabled()  # nothing to switch on before consent
    expect(card.locator("#linkedin-client-secret")).to_have_value("")  # the secret is never shown back

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    card.locator("#linkedin-consent-button").click()
    link = card.locator("#linkedin-consent-url")
    expect(link).to_contain_text(f"{server.url}/v1/linkedin/consent/")
    expect(card.get_by_role("img", name="QR code of the consent link")).to_be_visible()
    card.get_by_title("Copy consent link").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link.inner_text()

    # The Page admin opens it: LinkedIn's consent screen (the fake approves at once) sends them back.
    page.goto(copied)
    expect(page.locator("#result")).to_have_text("LinkedIn consent given")
    expect(page.locator("#message")).to_contain_text(ADMIN_URN)
    page.locator("#back").click()

    card = page.locator("#linkedin-card")
    expect(card.locator("#linkedin-messaging-state")).to_contain_text("awaiting LinkedIn's approval")
    expect(card).to_contain_text(f"Given by {ADMIN_URN}")
    assert _linkedin(server)["messaging_enabled"] is False

    card.locator("#linkedin-messaging-switch").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("Only do this once LinkedIn has approved your app")
    page.locator("#linkedin-messaging-confirm").click()
    expect(card.locator("#linkedin-messaging-state")).to_have_text("Messaging is on.")
    assert _linkedin(server)["messaging_enabled"] is True

    card.locator("#linkedin-messaging-switch").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("No message will move in or out")
    page.locator("#linkedin-messaging-confirm").click()
    expect(card.locator("#linkedin-messaging-state")).to_contain_text("awaiting LinkedIn's approval")
    assert _linkedin(server)["messaging_enabled"] is False
