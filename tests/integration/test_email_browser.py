"""A person gives a smith an email inbox from the console (issue 18): connects email in Settings →
Integrations with their Cloudflare account (the fake Cloudflare API), creates the inbox pa@acme.example from
the smith's Deployments tab and copies its address; mail to it, posted signed as the Email Worker posts it,
is answered from the inbox; the From name is changed in place and the next answer goes out under it; the
owner's address is changed in place; removing the inbox deletes its routing rule at Cloudflare.

The Worker's webhook URL should be public https, but connecting on a non-public IC_PUBLIC_URL only adds a
step saying so, so this module's server keeps its plain http://127.0.0.1 address. The test plays the Worker:
it signs with the secret the server uploaded to the fake Cloudflare with the Worker (its IC_SECRET binding).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from channels.email_signature import sign
from tests.fakes.cloudflare import ACCOUNT_ID, API_TOKEN, DOMAIN, ZONE_ID, FakeCloudflare, serve_fake_cloudflare
from tests.integration.conftest import Server, sign_in_console, start_server, stop_server, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

INBOX = f"pa@{DOMAIN}"
DANA = "dana@example.com"


@pytest.fixture(scope="module")
def cloudflare() -> Iterator[FakeCloudflare]:
    with serve_fake_cloudflare() as fake:
        yield fake


@pytest.fixture(scope="module")
def email_server(tmp_path_factory: pytest.TempPathFactory, cloudflare: FakeCloudflare) -> Iterator[Server]:
    """The product (SQLite) talking to the fake Cloudflare API."""
    running = start_server(tmp_path_factory.mktemp("email-server"), {"IC_CLOUDFLARE_API_URL": cloudflare.api_url})
    try:
        yield running
    finally:
        stop_server(running)


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {server.admin_token}"},
                        timeout=30)


def _inbox_rules(cloudflare: FakeCloudflare) -> list[dict[str, Any]]:
    return [rule for rule in cloudflare.rules[ZONE_ID] if rule["matchers"][0]["type"] == "literal"]


def _mail(text: str, subject: str) -> bytes:
    """Dana's message as Cloudflare hands it to the Worker: DMARC passed for her domain."""
    message = EmailMessage()
    message["Authentication-Results"] = ("mx.cloudflare.net; dkim=pass header.d=example.com; spf=pass "
                                         f"smtp.mailfrom={DANA}; dmarc=pass header.from=example.com")
    message["From"] = f"Dana Reyes <{DANA}>"
    message["To"] = INBOX
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(text)
    return message.as_bytes()


def _worker_posts(server: Server, cloudflare: FakeCloudflare, worker: str, raw: bytes) -> None:
    """What the Email Worker does with a message for an inbox: a POST signed with the secret it was given."""
    secret = cloudflare.scripts[worker]["bindings"]["IC_SECRET"]
    timestamp = str(int(time.time()))
    answer = httpx.post(f"{server.url}/v1/email/webhook/default", content=raw, timeout=30, headers={
        "content-type": "message/rfc822", "x-ic-timestamp": timestamp, "x-ic-envelope-from": DANA,
        "x-ic-envelope-to": INBOX, "x-ic-signature": sign(secret, timestamp, DANA, INBOX, raw)})
    assert answer.status_code == 200, answer.text


def _reply_to(cloudflare: FakeCloudflare, subject: str) -> dict[str, Any]:
    return wait_for(lambda: next((sent for sent in cloudflare.sent if sent["subject"] == f"Re: {subject}"), None),
                    f"the answer to “{subject}”", 60)


def test_a_smith_gets_an_email_inbox(email_server: Server, cloudflare: FakeCloudflare, page: Page) -> None:
    # EM-1, EM-2, EM-3, REN-1, ID-5, DEP-6, CON-4
    with _api(email_server) as api:
        agent = api.post("/agents", json={"name": "Mail agent"}).json()
        smith = api.post("/smiths", json={"agent_id": agent["id"], "name": "Dana's PA"}).json()
    sign_in_console(page, email_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=email_server.url)
    tab = f"{email_server.url}/smiths/{smith['id']}"

    # Before email is connected, the smith's tab says where to connect it.
    page.goto(tab)
    hint = page.locator("#connect-email-first")
    expect(hint).to_contain_text("Settings → Integrations → Email")
    expect(page.locator("#create-email-inbox")).to_have_count(0)

    # Settings → Integrations → Email: the Cloudflare account, token and domain; the card then says, in plain
    # words, that Email Routing is on for the domain and which Worker the server deployed.
    hint.get_by_role("link").click()
    card = page.locator("#email-card")
    expect(card.get_by_text("Not connected", exact=True)).to_be_visible()
    expect(card.locator("#email-api-token")).to_have_attribute("type", "password")
    page.fill("#email-account-id", ACCOUNT_ID)
    page.fill("#email-api-token", API_TOKEN)
    page.fill("#email-domain", DOMAIN)
    page.click("#connect-email")
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.get_by_text(f"On for {DOMAIN}", exact=True)).to_be_visible()
    [worker] = cloudflare.scripts
    expect(card.get_by_text(re.compile(f"^{re.escape(worker)}, deployed on your account"))).to_be_visible()
    expect(card.locator("#email-factory")).to_have_count(0)  # no Slack-style "Dedicated apps" token block
    assert API_TOKEN not in page.content()

    # The smith's tab: "Create email inbox" opens the dialog, the domain after the handle, the smith's name as
    # the From name's placeholder. A handle Cloudflare cannot route is refused in the dialog, by its label.
    page.goto(tab)
    page.click("#create-email-inbox")
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#email-inbox-domain")).to_have_text(f"@{DOMAIN}")
    expect(dialog.locator("#email-inbox-name")).to_have_attribute("placeholder", "Dana's PA")
    expect(dialog).to_contain_text("DMARC-verified, count as the owner: they may approve actions")
    page.fill("#email-inbox-handle", "p a")
    page.click("#email-inbox-create")
    expect(dialog).to_contain_text("Address: the part before the @")
    assert _inbox_rules(cloudflare) == []
    page.fill("#email-inbox-handle", "pa")
    page.fill("#email-inbox-owner", DANA)
    page.click("#email-inbox-create")
    expect(page.get_by_text(f"Inbox {INBOX} created")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("dialog")).to_have_count(0)
    row = page.get_by_role("row", name=re.compile("email"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(INBOX)
    expect(row).to_contain_text("Dana's PA")
    expect(row.locator(".email-owner")).to_have_text(DANA)
    [rule] = _inbox_rules(cloudflare)
    assert rule["matchers"] == [{"type": "literal", "field": "to", "value": INBOX}]
    assert rule["actions"][0]["type"] == "worker" and rule["actions"][0]["value"] == [worker]

    # The address is copied for the person to hand out.
    row.get_by_role("button", name="Copy address").click()
    assert wait_for(lambda: page.evaluate("navigator.clipboard.readText()") == INBOX, "the copied address")

    # Mail to it, as the Worker posts it, is answered from the inbox under the smith's name, in the thread.
    _worker_posts(email_server, cloudflare, worker, _mail("Can we meet on Friday?", "Friday"))
    first = _reply_to(cloudflare, "Friday")
    assert first["to"] == DANA and first["from"] == {"address": INBOX, "name": "Dana's PA"}

    # The From name is changed in place on the row; the next answer goes out under it.
    row.get_by_role("button", name="Change the From name").click()
    page.fill("#rename-email-inbox", "Dana's Assistant")
    page.click("#rename-email-inbox-save")
    expect(page.get_by_text(f"Mail from {INBOX} now goes out as “Dana's Assistant”")).to_be_visible()
    expect(row).to_contain_text("Dana's Assistant")
    expect(page.locator("#rename-email-inbox")).to_have_count(0)
    _worker_posts(email_server, cloudflare, worker, _mail("And Saturday?", "Saturday"))
    assert _reply_to(cloudflare, "Saturday")["from"] == {"address": INBOX, "name": "Dana's Assistant"}

    # The owner's address is changed in place too (one address, or blank for none).
    row.get_by_role("button", name="Change the owner's email").click()
    page.fill("#email-owner", "not an address")
    page.click("#email-owner-save")
    expect(row).to_contain_text("Owner's email: one address")
    page.fill("#email-owner", "ops@example.com")
    page.click("#email-owner-save")
    expect(page.get_by_text("Owner set to ops@example.com")).to_be_visible()
    expect(row.locator(".email-owner")).to_have_text("ops@example.com")
    with _api(email_server) as api:
        [made] = [d for d in api.get("/deployments", params={"target_id": smith["id"]}).json()["data"]
                  if d["kind"] == "email"]
    assert made["owner_email"] == "ops@example.com" and made["display_name"] == "Dana's Assistant"

    # Removing it says what it does, and the routing rule goes from Cloudflare.
    row.get_by_role("button", name="Remove").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_contain_text(f"Mail to {INBOX} will no longer reach this smith")
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Inbox {INBOX} removed")).to_be_visible()
    wait_for(lambda: _inbox_rules(cloudflare) == [], "the routing rule deleted at Cloudflare")
    expect(page.get_by_role("row", name=re.compile("email"))).to_have_count(0)
