"""Starts the real product with the README's command (``./run.sh``) on a free port."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import create_postgres_database
from tests.fakes.linkedin import FakeLinkedIn, serve_fake_linkedin
from tests.fakes.slack import FakeSlack, serve_fake_slack
from tests.fakes.telegram import FakeTelegram, serve_fake_telegram
from tests.fakes.whatsapp import FakeGraph, serve_fake_graph

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600  # the first start builds the console (npm install + vite build)


@dataclass
class Server:
    url: str
    admin_token: str
    log_path: Path
    process: subprocess.Popen[bytes]
    telegram: FakeTelegram | None = None
    slack: FakeSlack | None = None
    graph: FakeGraph | None = None
    linkedin: FakeLinkedIn | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def setup_link(self) -> str:
        match = re.search(r"Console setup link \(one-time, valid 24 h\): (\S+)", self.log())
        assert match, "the server log has no setup link"
        return match.group(1)


def wait_for(check: Callable[[], Any], what: str, wait_s: float = 30.0) -> Any:
    """Poll ``check`` (from a synchronous browser test) until it gives something truthy."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = f"ic_admin_{secrets.token_urlsafe(24)}"
    log_path = tmp / "server.log"
    env = {**os.environ, "IC_DATA_DIR": str(tmp / "data"), "IC_PUBLIC_URL": url,
           "IC_ADMIN_TOKEN": token, "IC_ADMIN_PASSWORD": "", **(extra_env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(["./run.sh", "--backend-port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(url=url, admin_token=token, log_path=log_path, process=process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{server.log()[-4000:]}")
        try:
            if httpx.get(f"{url}/", timeout=2).status_code == 200 and httpx.get(
                f"{url}/v1/health", timeout=2
            ).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_server(server)
    raise AssertionError(f"the server did not start in {START_TIMEOUT_S}s:\n{server.log()[-4000:]}")


def stop_server(server: Server) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """The Bot API the servers talk to (IC_TELEGRAM_API_URL); they poll it: no public HTTPS URL."""
    with serve_fake_telegram() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    """Slack's Web API and its consent page (a person clicks Allow), for the servers below."""
    with serve_fake_slack(consent="page") as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_graph() -> Iterator[FakeGraph]:
    """Meta's Graph API for WhatsApp (IC_GRAPH_API_URL, its version included), for the servers below."""
    with serve_fake_graph() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_linkedin() -> Iterator[FakeLinkedIn]:
    """LinkedIn's OAuth and REST hosts in one (IC_LINKEDIN_API_URL), for the servers below."""
    with serve_fake_linkedin() as fake:
        yield fake


@pytest.fixture(scope="session", params=["sqlite", "postgres+redis"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_telegram: FakeTelegram,
           fake_slack: FakeSlack, fake_graph: FakeGraph, fake_linkedin: FakeLinkedIn) -> Iterator[Server]:
    """The embedded default (SQLite, one worker), and the scale-out shape: PostgreSQL, Reflex
    state in Redis and two granian workers behind one port."""
    tmp = tmp_path_factory.mktemp("server")
    env = {"IC_TELEGRAM_API_URL": fake_telegram.url, "IC_SLACK_API_URL": fake_slack.api_url,
           "IC_SLACK_OAUTH_URL": fake_slack.authorize_url, "IC_GRAPH_API_URL": fake_graph.url,
           "IC_LINKEDIN_API_URL": fake_linkedin.url}
    drop = None
    if request.param != "sqlite":
        url, drop = create_postgres_database("ic_server")
        redis_url = os.environ.get("IC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        env.update({"IC_DATABASE_URL": url, "REFLEX_REDIS_URL": redis_url, "GRANIAN_WORKERS": "2"})
    running = start_server(tmp, env)
    running.telegram, running.slack, running.graph = fake_telegram, fake_slack, fake_graph
    running.linkedin = fake_linkedin
    yield running
    stop_server(running)
    if drop:
        drop()


CONSOLE_PASSWORD = "a long console password"


def sign_in_console(page: Any, server: Server) -> None:
    """Claim the console with the one-time setup link if nobody has yet, else sign in. Browser tests
    share one server per session, so whichever runs first claims it with the same password."""
    page.goto(server.setup_link())
    page.locator("#confirm").or_(page.get_by_text("invalid, used or expired")).wait_for(timeout=30_000)
    if page.locator("#confirm").count():
        page.fill("#password", CONSOLE_PASSWORD)
        page.fill("#confirm", CONSOLE_PASSWORD)
        page.get_by_role("button", name="Set password and sign in").click()
    else:
        page.goto(f"{server.url}/login")
        page.fill("#password", CONSOLE_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/deployments/?$"), timeout=30_000)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./test.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A laptop-sized page; its last screen is saved as last.png in the test's tmp directory."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    opened.screenshot(path=str(tmp_path / "last.png"))
    context.close()
