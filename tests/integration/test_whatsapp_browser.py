"""A non-developer connects WhatsApp in the console, makes a wa.me link for a smith, the person sends its
greeting, and the console shows the binding with its 24-hour reply window (issue 16 §7, §8)."""

from __future__ import annotations

import random
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    BUSINESS_NUMBER,
    DISPLAY_PHONE_NUMBER,
    PHONE_NUMBER_ID,
    VERIFIED_NAME,
    FakeGraph,
    body,
    sign,
    text_message,
)
from tests.integration.conftest import Server, sign_in_console, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {server.admin_token}"},
                        timeout=30)




def _texts(graph: FakeGraph, wa_id: str) -> list[str]:
    return [m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"]
            for m in graph.sent_to(wa_id)]


def _person_writes(server: Server, text: str, wa_id: str) -> None:
    """What Meta does when the person sends a message: a POST signed with the app secret."""
    raw = body(text_message(text, wa_id=wa_id, name="Ana Pérez"))
    answer = httpx.post(f"{server.url}/v1/whatsapp/webhook/default", content=raw, timeout=30,
                        headers={"content-type": "application/json", **sign(raw)})
    assert answer.status_code == 200, answer.text


def _connect(page: Page) -> None:
    page.fill("#whatsapp-phone-number-id", PHONE_NUMBER_ID)
    page.fill("#whatsapp-access-token", ACCESS_TOKEN)
    page.fill("#whatsapp-app-secret", APP_SECRET)
    page.click("#connect-whatsapp")


def test_connect_whatsapp_link_a_smith_and_see_the_window(server: Server, page: Page) -> None:  # WA-1, WA-2, WA-4
    graph = server.graph
    assert graph is not None
    with _api(server) as api:
        if api.get("/tenant/whatsapp").json()["configured"]:  # a rerun on the same server starts afresh
            assert api.delete("/tenant/whatsapp").status_code == 204
        agent = api.post("/agents", json={"name": "WhatsApp greeter"}).json()
        smith = api.post("/smiths", json={"agent_id": agent["id"], "name": "WhatsApp PA"}).json()
    wa_id = f"3069{random.randint(10_000_000, 99_999_999)}"  # one person per run: the fake outlives a server
    sign_in_console(page, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)

    # Settings → Integrations → WhatsApp: the three values from Meta's dashboard; the number is checked.
    page.get_by_role("link", name="Integrations", exact=True).click()
    card = page.locator("#whatsapp-card")
    expect(card.get_by_text("Not connected", exact=True)).to_be_visible()
    expect(card.locator("#whatsapp-access-token")).to_have_attribute("type", "password")
    _connect(page)
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.get_by_text(VERIFIED_NAME, exact=True)).to_be_visible()
    expect(card.get_by_text(DISPLAY_PHONE_NUMBER, exact=True)).to_be_visible()
    expect(card.get_by_text("GREEN", exact=True)).to_be_visible()
    assert ACCESS_TOKEN not in page.content() and APP_SECRET not in page.content()

    # What to paste into Meta's dashboard stays in view, each with a copy button that copies it.
    with _api(server) as api:
        verify_token = api.get("/tenant/whatsapp").json()["verify_token"]
    webhook_url = f"{server.url}/v1/whatsapp/webhook/default"
    expect(card.get_by_text(webhook_url, exact=True)).to_be_visible()
    expect(card.locator("#whatsapp-verify-token")).to_have_text(verify_token)
    card.get_by_role("button", name="Copy verify token").click()
    assert wait_for(lambda: page.evaluate("navigator.clipboard.readText()") == verify_token, "the verify token")
    card.get_by_role("button", name="Copy URL").click()
    assert wait_for(lambda: page.evaluate("navigator.clipboard.readText()") == webhook_url, "the webhook URL")

    # The smith's Deployments tab makes a wa.me link with its copy button and a QR code.
    page.goto(f"{server.url}/smiths/{smith['id']}")
    page.click("#create-whatsapp-link")
    link = page.locator("#deep-link")
    expect(link).to_contain_text(f"https://wa.me/{BUSINESS_NUMBER}?text=")
    expect(page.get_by_alt_text("QR code of the deep link")).to_be_visible()
    expect(page.locator("#deep-link-text")).to_contain_text("when the person sends it, their WhatsApp number is "
                                                            "bound to this smith")
    page.get_by_role("button", name="Copy link").click()
    url = link.inner_text().strip()
    assert wait_for(lambda: page.evaluate("navigator.clipboard.readText()") == url, "the copied link")
    expect(page.get_by_role("row", name=re.compile("whatsapp"))).to_contain_text("pending")

    # The person opens it and sends the prefilled greeting: their number is bound and told so.
    [greeting] = parse_qs(urlsplit(url).query)["text"]
    _person_writes(server, greeting, wa_id)
    wait_for(lambda: any("connected to WhatsApp PA" in text for text in _texts(graph, wa_id)), "the confirmation")

    # The tab shows the binding, and that the smith can answer for the next 24 hours.
    page.reload()
    row = page.get_by_role("row", name=re.compile("whatsapp"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(wa_id)
    expect(row).to_contain_text(re.compile(r"Can reply until \d\d:\d\d UTC \(in 2[34] h\)"))
    page.get_by_role("link", name="Deployments", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("WhatsApp PA"))).to_contain_text("Can reply until")

    # Meta stops accepting the token: the next reply is refused, and the card says so in red.
    graph.expire_token()
    try:
        _person_writes(server, "hello again", wa_id)
        with _api(server) as api:
            wait_for(lambda: api.get("/tenant/whatsapp").json()["status"] == "error", "the refused token", 45)
        page.get_by_role("link", name="Integrations", exact=True).click()
        expect(card.get_by_text("Error", exact=True)).to_be_visible()
        expect(card.locator("[data-accent-color=red]", has_text="graph 190")).to_be_visible()
    finally:
        graph.tokens.add(ACCESS_TOKEN)
    # Pasting the values again reconnects, and clears the error.
    _connect(page)
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.get_by_text("graph 190")).to_have_count(0)
