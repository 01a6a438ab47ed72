"""Canary secrets (issue 15 §4): unique marked values planted in every secret the product holds, the
places they must not reach (HTTP answers, the server log, the console's HTML and socket frames, the
database's bytes), and the search for them.

A canary's *marker* is the part searched for: ``CANARY`` and 12 random hex digits, embedded in a value
of the field's own format (``123456:CANARY…`` for a Telegram bot token). Secrets the product or a
provider issues (an OAuth bot token, a minted API token) cannot carry a marker; their whole value is
searched instead. Each secret names the places where it legitimately appears, by place label prefix:
a minted token in the one answer that minted it, the setup link in the output of the command that
printed it; everywhere else a hit is a leak.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from app.crypto import SecretBox
from tests.integration.conftest import ROOT


def marker() -> str:
    return f"CANARY{secrets.token_hex(6).upper()}"


def tail(length: int = 16) -> str:
    """Random characters after the marker, so a hint showing a secret's last 4 never shows the marker."""
    return secrets.token_hex(length // 2)


@dataclass
class Canary:
    name: str
    value: str
    mark: str  # what is searched for: the marker, or the whole value of an issued secret
    planted: bool  # set by the test (else issued by the product or a provider and recorded)
    allowed: tuple[str, ...] = ()  # place-label prefixes where it may appear


class Canaries:
    def __init__(self) -> None:
        self.all: dict[str, Canary] = {}

    def plant(self, name: str, make: Callable[[str], str], *, allowed: Iterable[str] = ()) -> str:
        """A new marked value: ``make(marker)`` puts the marker into the field's format."""
        mark = marker()
        value = make(mark)
        assert mark in value
        self.all[name] = Canary(name, value, mark, True, tuple(allowed))
        return value

    def issued(self, name: str, value: str, *, allowed: Iterable[str] = ()) -> str:
        """A secret the product or a provider made; searched for whole (long random values)."""
        assert len(value) >= 20, f"{name} is too short to search for: {value!r}"
        self.all[name] = Canary(name, value, value, False, tuple(allowed))
        return value

    def allow(self, name: str, *places: str) -> None:
        canary = self.all[name]
        canary.allowed = (*canary.allowed, *places)

    @property
    def planted(self) -> int:
        return sum(c.planted for c in self.all.values())


@dataclass
class Hit:
    canary: str
    place: str
    count: int
    context: str


@dataclass
class Evidence:
    """Every place searched, by label (``http …``, ``log``, ``console html …``, ``console ws …``, ``db …``)."""

    places: dict[str, bytes] = field(default_factory=dict)

    def add(self, label: str, content: str | bytes) -> None:
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        key, n = label, 2
        while key in self.places:
            key, n = f"{label} #{n}", n + 1
        self.places[key] = data

    def extend(self, label: str, content: str | bytes) -> None:
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        self.places[label] = self.places.get(label, b"") + data + b"\n"

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.places.values())

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.places:
            kind = " ".join(label.split()[:2]) if label.startswith("console") else label.split()[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def where(self, needle: str) -> list[str]:
        """Every place holding ``needle``, allowed or not."""
        return [label for label, data in self.places.items() if needle.encode() in data]

    def search(self, canaries: Canaries) -> list[Hit]:
        hits = []
        for canary in canaries.all.values():
            needle = canary.mark.encode()
            for label, data in self.places.items():
                count = data.count(needle)
                if count and not label.startswith(canary.allowed or ("\0",)):
                    at = data.find(needle)
                    context = data[max(0, at - 120):at + len(needle) + 60].decode("utf-8", "replace")
                    hits.append(Hit(canary.name, label, count, context.replace("\n", "⏎")))
        return hits


def describe_hits(hits: list[Hit]) -> str:
    return "\n".join(f"- {h.canary} in {h.place} ({h.count}x): …{h.context}…" for h in hits)


class Recorder:
    """Records every answer of the product (status line, headers and body) as evidence, redirects
    included; answers from the fakes are not the product's and are left out."""

    def __init__(self, evidence: Evidence, product_url: str) -> None:
        self.evidence, self.product_url = evidence, product_url
        self.kind, self.step = "http", "setup"  # kind "feed": the event feed's pages

    def record(self, response: httpx.Response) -> None:
        if not str(response.url).startswith(self.product_url):
            return
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        path = response.url.raw_path.decode()
        self.evidence.add(f"{self.kind} {self.step}: {response.request.method} {path} -> {response.status_code}",
                          f"HTTP {response.status_code}\n{headers}\n\n".encode() + response.content)

    def client(self, bearer: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.Client(base_url=self.product_url, headers=headers, timeout=30,
                            event_hooks={"response": [self.record]}, **kwargs)




def all_pages(api: httpx.Client, path: str, limit: int = 50, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list, following ``next_cursor`` (each page is recorded)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = api.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["data"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def read_everything(api: httpx.Client, rec: Recorder) -> None:
    """Every list, every page: the event feed, deliveries, runs, deployments, tokens, integrations, the
    OpenAPI document."""
    rec.step, rec.kind = "lists", "feed"
    events = all_pages(api, "/v1/events", limit=20)
    rec.kind = "http"
    assert {"integration.updated", "deployment.bound", "token.created"} <= {e["type"] for e in events}
    for path in ("/v1/deliveries", "/v1/runs", "/v1/deployments", "/v1/tokens", "/v1/smiths", "/v1/agents"):
        all_pages(api, path)
    for path in ("/v1/tenant/telegram", "/v1/tenant/whatsapp", "/v1/tenant/slack", "/v1/tenant/integrations",
                 "/v1/openapi.json", "/v1/docs"):
        assert api.get(path).status_code == 200, path


def setup_link(env: dict[str, str], evidence: Evidence) -> str:
    """``./run.sh --setup-link`` with the server's environment: it prints a new one-time console link."""
    done = subprocess.run(["./run.sh", "--setup-link"], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120, check=True)
    evidence.add("setup-link command output", done.stdout + done.stderr)
    return done.stdout.strip().splitlines()[-1]


def database_files(data_dir: Path) -> dict[str, bytes]:
    """The bytes of every file of the data directory: the SQLite file, its -wal and -shm, the rest."""
    return {str(path.relative_to(data_dir)): path.read_bytes()
            for path in sorted(data_dir.rglob("*")) if path.is_file()}


def open_sealed(db_path: Path, master_key: str) -> tuple[int, dict[str, str]]:
    """Open every sealed value (integrations, installations, agents' model keys) with the master key,
    read-only: how many ciphertexts there are, and every secret they hold (name -> value)."""
    box = SecretBox([master_key])
    opened: dict[str, str] = {}
    count = 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for table in ("integration", "installation"):
            for row_id, kind, sealed in db.execute(f"SELECT id, kind, secrets_ciphertext FROM {table}"):
                if sealed:
                    count += 1
                    plain = box.decrypt(sealed, bound_to=f"{table}:{row_id}:{kind}")
                    opened.update({f"{kind}.{k}": str(v) for k, v in json.loads(plain).items()})
        for row_id, sealed in db.execute("SELECT id, model_api_key_ciphertext FROM agent"):
            if sealed:
                count += 1
                opened[f"agent {row_id}"] = box.decrypt(sealed, bound_to=f"agent:{row_id}:model_api_key")
    finally:
        db.close()
    return count, opened


# -- the console -------------------------------------------------------------------------------------

class Console:
    """One browser context on the console: each step's page HTML and every socket frame the browser
    receives during it (the Reflex state sent to the browser) become evidence under the step's name."""

    opened: ClassVar[list[Console]] = []  # for a screenshot of each when a step fails

    def __init__(self, browser: Browser, url: str, evidence: Evidence) -> None:
        self.url, self.evidence, self.step = url, evidence, "start"
        Console.opened.append(self)
        self.context = browser.new_context(viewport={"width": 1366, "height": 800})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        self.evidence.extend(f"console ws {self.step}", payload)

    def at(self, step: str, path: str | None = None, ready: str | None = None) -> Page:
        """Start a step, on ``path`` if given; ``ready``: a selector the page shows once hydrated (one reload
        if it does not: the console's bundle may be rebuilt by another server starting meanwhile)."""
        self.step = step
        if path is not None:
            self.page.goto(f"{self.url}{path}")
            self.page.wait_for_load_state("networkidle")
        if ready is not None:
            try:
                self.page.locator(ready).wait_for(timeout=15_000)
            except PlaywrightTimeout:
                self.page.reload()
                self.page.locator(ready).wait_for()
        return self.page

    def snap(self) -> None:
        self.page.wait_for_timeout(400)  # the last state updates land
        self.evidence.add(f"console html {self.step}", self.page.content())

    def session_cookie(self) -> str:
        return next(c["value"] for c in self.context.cookies() if c["name"] == "ic_session")


def drive_console(browser: Browser, url: str, c: Canaries, v: dict[str, str], evidence: Evidence,
                  link: str, ids: dict[str, str]) -> None:
    # Sign-in with a wrong password, then IC_ADMIN_PASSWORD.
    first = Console(browser, url, evidence)
    page = first.at("login", "/login", ready="#password")
    page.fill("#password", v["wrong_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("wrong password")).to_be_visible()
    page.fill("#password", v["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/deployments/?$"))
    first.snap()
    c.issued("a console session token (sign-in)", first.session_cookie(), allowed=["console ws"])
    first.context.close()

    # The setup link printed by ./run.sh --setup-link claims the console with a new password.
    console = Console(browser, url, evidence)
    token = link.split("token=", 1)[1]
    c.issued("the console setup link", token, allowed=["setup-link command", "console html setup-page",
                                                       "console ws setup-page"])
    page = console.at("setup-page", link.removeprefix(url), ready="#confirm")
    console.snap()
    page.fill("#password", v["claim_password"])
    page.fill("#confirm", v["claim_password"])
    page.get_by_role("button", name="Set password and sign in").click()
    page.wait_for_url(re.compile(r"/deployments/?$"))
    c.issued("a console session token (setup link)", console.session_cookie(), allowed=["console ws"])

    # Every page, a smith's tabs included.
    smith = f"/smiths/{ids['smith']}"
    for step, path in (("deployments", "/deployments"), ("smiths", "/smiths"), ("smith", smith),
                       ("agents", "/agents"), ("runs", "/runs"), ("run", f"/runs/{ids['run']}"),
                       ("events", "/events"), ("integrations", "/settings/integrations")):
        console.at(step, path)
        console.snap()
    page = console.at("smith-tabs", smith)
    for tab in ("Schedules", "Memory", "Deployments"):
        page.get_by_role("tab", name=tab).click()
        console.snap()

    # Settings → Integrations: a refused bot token, then WhatsApp's secrets pasted again.
    page = console.at("integration-forms", "/settings/integrations")
    page.fill("#telegram-bot-token", v["tg_refused"])
    page.click("#connect-telegram")
    expect(page.locator("#telegram-card").get_by_text("Telegram rejected this bot token")).to_be_visible()
    page.fill("#whatsapp-phone-number-id", "106540352242922")
    page.fill("#whatsapp-access-token", v["wa_token"])
    page.fill("#whatsapp-app-secret", v["wa_secret"])
    page.click("#connect-whatsapp")
    expect(page.locator("#whatsapp-card").get_by_text("Connected", exact=True)).to_be_visible()
    console.snap()

    # A deep link and an MCP caller token minted in the console: shown in that step only.
    page = console.at("create-link", smith)
    page.click("#create-telegram-link")
    shown = page.locator("#deep-link")
    expect(shown).to_contain_text("?start=")
    c.issued("a Telegram deep link made in the console", shown.inner_text().split("start=")[1].strip(),
             allowed=["console html create-link", "console ws create-link"])
    console.snap()
    page = console.at("mint-caller-token", smith)
    page.locator(".caller-tokens").first.click()
    page.fill("#caller-subject", "console-caller")
    page.click("#create-caller-token")
    value = page.locator("#caller-token-value")
    expect(value).to_contain_text("ic_mcp_")
    c.issued("an MCP caller token made in the console", value.inner_text().strip(),
             allowed=["console html mint-caller-token", "console ws mint-caller-token"])
    console.snap()
    page.keyboard.press("Escape")

    # Back later: neither is shown again.
    for step, path in (("revisit-smith", smith), ("revisit-deployments", "/deployments"),
                       ("revisit-integrations", "/settings/integrations")):
        console.at(step, path)
        console.snap()
    console.context.close()
