"""A person gives a smith its own Slack app from the console (issue 17): connects Slack with an app
configuration refresh token, creates the app with the assistant pane and two suggested prompts, installs it
through Slack's consent page, talks to the smith in the pane, renames the app in place, and removes the
deployment together with the app.

A dedicated app's manifest holds this server's request URLs, which Slack accepts only at a public https
address, so this module runs a server of its own whose IC_PUBLIC_URL is https://ingram.example.com.
Chromium resolves that name to a TLS proxy (self-signed certificate) on 127.0.0.1:443 in front of the
server: 443, because the console's script drops the port of an https page's socket URL (it expects a load
balancer there). The test's own API calls and Slack's signed requests go to the server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fakes.slack import (
    CLIENT_ID,
    CLIENT_SECRET,
    SIGNING_SECRET,
    TEAM_ID,
    TEAM_NAME,
    FakeSlack,
    SlackApp,
    assistant_thread_started_event,
    event_envelope,
    message_event,
    sign,
)
from tests.integration.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CONSOLE_PASSWORD,
    Server,
    start_server,
    stop_server,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PUBLIC_HOST = "ingram.example.com"
PUBLIC = f"https://{PUBLIC_HOST}"
PROMPTS = ["Summarise my day", "Draft a reply"]


# -- a public https address for a server on this machine ------------------------------------------

def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PUBLIC_HOST)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(PUBLIC_HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def _tls_proxy(target_port: int, cert: Path, key: Path) -> Iterator[None]:
    """TLS on 127.0.0.1:443, plain TCP to the server (HTTP and the console's websocket alike)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))

    try:
        listening = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 443, ssl=context))
    except OSError as exc:
        loop.close()
        raise AssertionError(f"this test needs 127.0.0.1:443 for its https address: {exc}") from exc
    thread = threading.Thread(target=loop.run_forever, name="tls-proxy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(listening.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory, fake_slack: FakeSlack) -> Iterator[Server]:
    """The product (SQLite) at https://ingram.example.com, talking to the fake Slack."""
    tmp = tmp_path_factory.mktemp("public-server")
    cert, key = _self_signed(tmp)
    running = start_server(tmp, {"IC_PUBLIC_URL": PUBLIC, "IC_SLACK_API_URL": fake_slack.api_url,
                                 "IC_SLACK_OAUTH_URL": fake_slack.authorize_url})
    running.slack = fake_slack
    try:
        with _tls_proxy(urlsplit(running.url).port or 0, cert, key):
            yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The conftest's Chromium, resolving the public name to the proxy and trusting its certificate."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./test.sh installs Debian's chromium package")
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {PUBLIC_HOST} 127.0.0.1", "--ignore-certificate-errors"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 800}, ignore_https_errors=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    opened.screenshot(path=str(tmp_path / "last.png"))
    context.close()


# -- helpers ----------------------------------------------------------------------------------------

def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {server.admin_token}"},
                        timeout=30)


def _claim_console(page: Page, server: Server) -> None:
    """The server's one-time setup link, at the public address. Pages are opened with their trailing slash:
    the static pages' redirect to it names http (the hop behind the proxy is), where nothing listens."""
    page.goto(server.setup_link().replace(f"{PUBLIC}/setup?", f"{PUBLIC}/setup/?"))
    page.fill("#password", CONSOLE_PASSWORD)
    page.fill("#confirm", CONSOLE_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    page.wait_for_url(re.compile(r"/deployments/?$"), timeout=30_000)


def _fill_slack_form(page: Page, refresh_token: str | None = None) -> None:
    page.fill("#slack-client-id", CLIENT_ID)
    page.fill("#slack-client-secret", CLIENT_SECRET)
    page.fill("#slack-signing-secret", SIGNING_SECRET)
    if refresh_token is not None:
        page.fill("#slack-config-refresh-token", refresh_token)
    page.click("#connect-slack")


def _app(fake: FakeSlack, app_id: str) -> SlackApp:
    return next(app for app in fake.apps.values() if app.app_id == app_id)


def _slack_posts(server: Server, fake: FakeSlack, app_id: str, event: dict[str, Any]) -> None:
    """What Slack does for a dedicated app: a POST to the request URL in its manifest, signed with its secret."""
    request_url = fake.manifests[app_id]["settings"]["event_subscriptions"]["request_url"]
    bot_user = fake.workspaces[TEAM_ID].bots[app_id]
    body = json.dumps(event_envelope(event, api_app_id=app_id, authorized_user=bot_user)).encode()
    target = urlsplit(request_url)
    answer = httpx.post(f"{server.url}{target.path}?{target.query}", content=body, timeout=30,
                        headers={"content-type": "application/json", **sign(body, _app(fake, app_id).signing_secret)})
    assert answer.status_code == 200, answer.text


def test_a_smith_gets_its_own_slack_app(public_server: Server, page: Page) -> None:  # SL-3, SL-6, REN-1
    fake = public_server.slack
    assert fake is not None
    with _api(public_server) as api:
        agent = api.post("/agents", json={"name": "Pane agent"}).json()
        smith = api.post("/smiths", json={"agent_id": agent["id"], "name": "Dana's PA"}).json()
    _, refresh_token, _ = fake.issue_config_token()
    _claim_console(page, public_server)
    tab = f"{PUBLIC}/smiths/{smith['id']}/"

    # The shared app connected without a configuration token: the card and the smith's tab say how to add one.
    page.get_by_role("link", name="Integrations", exact=True).click()
    card = page.locator("#slack-card")
    _fill_slack_form(page)
    expect(card.get_by_text("Connected", exact=True)).to_be_visible()
    expect(card.locator("#slack-factory")).to_contain_text("Dedicated apps")
    expect(card.locator("#slack-factory-hint")).to_contain_text("paste an app configuration refresh token")
    page.goto(tab)
    hint = page.locator("#slack-factory-hint")
    expect(hint).to_contain_text("add the app configuration refresh token in Settings → Integrations → Slack")
    expect(page.locator("#create-slack-app")).to_have_count(0)

    # (a) The configuration refresh token pasted in: the card says, in plain words, that it renews itself.
    hint.get_by_role("link").click()
    _fill_slack_form(page, refresh_token)
    expect(card.locator("#slack-factory-summary")).to_have_text(re.compile(
        r"Token renews automatically; expires \d\d:\d\d UTC \(in 1[12] h\), last renewed \d\d:\d\d UTC"))
    assert refresh_token not in page.content()

    # (b) The smith's tab creates an app of its own: a name (counted), the assistant pane, two prompts.
    page.goto(tab)
    page.click("#create-slack-app")
    dialog = page.get_by_role("dialog")
    page.fill("#slack-app-name", "Dana's Pane")
    expect(dialog.locator("#slack-app-name-count")).to_have_text("11 / 35")
    expect(dialog.get_by_role("switch", name="Show in Slack's assistant pane")).to_have_attribute(
        "aria-checked", "true")
    expect(dialog.locator("#slack-app-greeting")).to_have_value("Hi! How can I help?")
    page.fill("#slack-app-prompt-1", PROMPTS[0])
    page.fill("#slack-app-prompt-2", PROMPTS[1])
    page.click("#slack-app-create")
    expect(page.get_by_text("Slack app “Dana's Pane” created")).to_be_visible(timeout=60_000)
    link = page.locator("#install-link")
    expect(link).to_contain_text(f"{PUBLIC}/v1/slack/install/")
    expect(page.get_by_alt_text("QR code of the install link")).to_be_visible()
    expect(page.locator("#install-link-text")).to_contain_text("“Dana's Pane”, this smith's own app")
    row = page.get_by_role("row", name=re.compile("slack"))
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("Dana's Pane")
    with _api(public_server) as api:
        [made] = [d for d in api.get("/deployments", params={"target_id": smith["id"]}).json()["data"]
                  if d["kind"] == "slack"]
    app_id = made["slack_app_id"]
    assert app_id and fake.manifests[app_id]["display_information"]["name"] == "Dana's Pane"

    # (c) Whoever opens the link sees Slack's consent page for that app, allows, and lands on our page.
    page.goto(link.inner_text().strip())
    expect(page.get_by_text(f"Dana's Pane wants to access {TEAM_NAME}").first).to_be_visible()
    page.click("#allow")
    expect(page.locator("#result")).to_have_text("Slack connected")
    page.goto(tab)
    row = page.get_by_role("row", name=re.compile("slack"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(TEAM_NAME)
    with _api(public_server) as api:
        address = api.get(f"/deployments/{made['id']}").json()["address"]
    assert address.startswith(f"{app_id}:{TEAM_ID}:D"), address
    dm = address.rsplit(":", 1)[1]
    expect(row).to_contain_text(dm)

    # (d) The installer opens the assistant pane: the smith offers the two prompts, then answers in the thread.
    started = assistant_thread_started_event(channel=dm)
    thread_ts = started["assistant_thread"]["thread_ts"]
    _slack_posts(public_server, fake, app_id, started)
    offered = wait_for(lambda: next((call for call in fake.assistant_calls
                                     if call["method"] == "assistant.threads.setSuggestedPrompts"
                                     and call["app_id"] == app_id and call["thread_ts"] == thread_ts), None),
                       "the suggested prompts")
    assert [prompt["title"] for prompt in offered["prompts"]] == PROMPTS
    _slack_posts(public_server, fake, app_id, message_event("hello from the pane", channel=dm, thread_ts=thread_ts))
    wait_for(lambda: any(m["channel"] == dm and m.get("thread_ts") == thread_ts
                         and "hello from the pane" in m["text"] for m in fake.posted), "the smith's reply", 60)

    # (e) The app is renamed in place on its row: Slack's manifest follows.
    row.get_by_role("button", name="Rename the Slack app").click()
    page.fill("#rename-slack-app", "Dana's Helper")
    page.click("#rename-slack-app-save")
    expect(page.get_by_text("Slack app renamed to “Dana's Helper”")).to_be_visible()
    wait_for(lambda: fake.manifests[app_id]["display_information"]["name"] == "Dana's Helper", "the new name")
    expect(row).to_contain_text("Dana's Helper")
    expect(page.locator("#rename-slack-app")).to_have_count(0)

    # Removing the deployment offers to delete the app too (ticked by default): Slack no longer has it.
    row.get_by_role("button", name="Remove").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm.get_by_role("checkbox", name="Also delete the Slack app")).to_be_checked()
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deployment and its Slack app removed")).to_be_visible()
    wait_for(lambda: app_id not in fake.manifests, "the app deleted at Slack")
    expect(page.get_by_role("row", name=re.compile("slack"))).to_have_count(0)
