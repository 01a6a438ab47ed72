"""Canary secrets (issue 15 §4): every secret the product is given, and every one it or a provider
issues, is a unique marked value; the flows and their error paths run (wrong secrets, providers
failing, a redirect loop, forged signatures); then no canary may be found in the HTTP answers and the
event feed, the server log, the console's pages and the Reflex state sent to the browser, or the
bytes of the SQLite file (the main file, -wal and -shm) and the rest of the data directory. Sealed
secrets are ciphertext: the test opens them with the (canary) master key to show they are there.

Where a secret may legitimately appear (a ``Canary``'s ``allowed`` place labels):

- a token minted through the API (admin, smith, MCP caller) and a start link (Telegram deep link,
  WhatsApp wa.me code, Slack install link): only in the one answer that minted it; the Slack install
  link's token also in the redirect its opener gets (it is the OAuth ``state``, by design);
- a token or link minted in the console (deep link, caller token): only on the screen of the step that
  minted it (its HTML and the socket frames of that step);
- the console setup link: in the output of ``./run.sh --setup-link`` and on the /setup page it opens;
- the console session token: in socket frames (Reflex sets its cookie through the state);
- WhatsApp's verify token, published on purpose for the admin to paste at Meta: answers, console and
  database, never the log;
- everything else (IC_ADMIN_TOKEN, passwords, IC_SECRET_KEY, IC_MODEL_API_KEY, an agent's model key,
  the providers' secrets, tokens Slack issues, Telegram's generated webhook secret): nowhere.

The server logs at DEBUG (the most it ever writes), and Reflex's disk state (REFLEX_STATES_WORKDIR, here
the test's own directory) is searched too: it is the console state, pickled.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser
from starlette.applications import Starlette
from starlette.routing import Route

from tests.fakes.openai import FakeOpenAI, status, text
from tests.fakes.serve import serve_in_thread
from tests.fakes.slack import (
    APP_ID,
    BOT_ID,
    BOT_SCOPES,
    BOT_USER_ID,
    INSTALLER_ID,
    TEAM_ID,
    FakeSlack,
    event_envelope,
    message_event,
    serve_fake_slack,
)
from tests.fakes.slack import sign as slack_sign
from tests.fakes.telegram import FakeTelegram, private_message, serve_fake_telegram
from tests.fakes.whatsapp import PHONE_NUMBER_ID, FakeGraph, serve_fake_graph, text_message
from tests.fakes.whatsapp import body as wa_body
from tests.fakes.whatsapp import sign as wa_sign
from tests.integration.canary_helpers import (
    Canaries,
    Console,
    Evidence,
    Hit,
    Recorder,
    all_pages,
    database_files,
    describe_hits,
    drive_console,
    open_sealed,
    read_everything,
    setup_link,
    tail,
)
from tests.integration.conftest import start_server, stop_server, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

HOPS = 11  # aiohttp follows 10 redirects, then raises TooManyRedirects quoting the URL (bot token included)


def _is(canaries: tuple[str, ...], *places: str) -> Callable[[Hit], bool]:
    return lambda hit: hit.canary.startswith(canaries) and hit.place.startswith(places)


# Leaks found by this test and not yet fixed in the product: each marks the test xfail (with the leak
# named) while every other canary and place stays strict. Remove an entry once its leak is fixed. Fixed
# since the first run (2026-12-04): the spent setup token sent back to the browser (now a backend var),
# live sessions pickled into ./.states (the state lives in memory, or Redis when configured), Slack's
# xoxe- tokens and Telegram's /start codes in DEBUG logs (channels/redact.py), and the console's deep link
# sent again in later full snapshots (app/state/deployments.py keeps it out of them).
KNOWN_LEAKS: dict[str, Callable[[Hit], bool]] = {
}


def plant(c: Canaries) -> dict[str, str]:
    """Every secret the test sets, each in its field's format around its marker."""
    bot_id = random.randint(1_000_000, 9_999_999)
    return {
        "admin_token": c.plant("IC_ADMIN_TOKEN", lambda m: f"ic_admin_{m}{tail(24)}"),
        "password": c.plant("IC_ADMIN_PASSWORD", lambda m: f"pw-{m}-{tail()}"),
        "secret_key": c.plant("IC_SECRET_KEY", lambda m: f"{m}{tail(32)}"),
        "model_key": c.plant("IC_MODEL_API_KEY", lambda m: f"sk-{m}{tail(24)}"),
        "claim_password": c.plant("the password set with the setup link", lambda m: f"claim-{m}-{tail()}"),
        "wrong_password": c.plant("a wrong console password", lambda m: f"wrong-{m}-{tail()}"),
        "wrong_bearer": c.plant("an unknown bearer token", lambda m: f"ic_admin_{m}{tail(24)}"),
        "agent_key": c.plant("an agent's own model API key", lambda m: f"sk-{m}{tail(24)}"),
        "tg_token": c.plant("Telegram bot token", lambda m: f"{bot_id}:{m}{tail(24)}"),
        "tg_refused": c.plant("a Telegram bot token Telegram refuses", lambda m: f"{bot_id + 1}:{m}{tail(24)}"),
        "tg_malformed": c.plant("a malformed Telegram bot token", lambda m: f"bot-{m}-{tail()}"),
        "tg_forged": c.plant("a forged Telegram webhook secret", lambda m: f"{m}{tail(24)}"),
        "wa_token": c.plant("WhatsApp access token", lambda m: f"EAAG{m}{tail(32)}"),
        "wa_refused": c.plant("a WhatsApp access token Meta refuses", lambda m: f"EAAG{m}{tail(32)}"),
        "wa_secret": c.plant("WhatsApp app secret", lambda m: f"{m}{tail(16)}"),
        "slack_client_secret": c.plant("Slack client secret", lambda m: f"{m}{tail(16)}"),
        "slack_signing": c.plant("Slack signing secret", lambda m: f"{m}{tail(16)}"),
        "slack_bot": c.plant("Slack bot token (pasted)", lambda m: f"xoxb-{m}-{tail(24)}"),
        "slack_refused": c.plant("a Slack bot token Slack refuses", lambda m: f"xoxb-{m}-{tail(24)}"),
        "slack_app": c.plant("Slack app-level token", lambda m: f"xapp-1-{m}-{tail(24)}"),
        "slack_refresh": c.plant("Slack configuration refresh token", lambda m: f"xoxe-1-{m}{tail(32)}"),
    }


@dataclass
class Flows:
    """The API's flows and error paths, provider by provider; each secret minted is recorded with its place."""

    c: Canaries
    v: dict[str, str]
    rec: Recorder
    data_dir: Path
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.api = self.rec.client(self.v["admin_token"])

    def step(self, name: str) -> None:
        self.rec.step = name

    def minted(self, name: str, value: str) -> None:
        """A secret minted in the answer of the current step: that answer is its one place."""
        self.c.issued(name, value, allowed=[f"http {self.rec.step}:"])

    def post_raw(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        return self.api.post(path, content=raw, headers={"content-type": "application/json", **headers}).status_code

    def tokens(self) -> None:
        api, v = self.api, self.v
        self.step("basics")
        assert api.get("/v1/health").status_code == 200
        with self.rec.client(v["wrong_bearer"]) as stranger:
            assert stranger.get("/v1/smiths").status_code == 401
        agent = api.post("/v1/agents", json={"name": "Canary agent"}).json()
        self.ids["smith"] = api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Canary PA"}).json()["id"]
        self.step("mint admin token")
        admin = api.post("/v1/tokens", json={"subject": "canary-ops"}).json()
        self.minted("an admin token minted by POST /v1/tokens", admin["token"])
        self.step("mint smith token")
        narrow_token = api.post(f"/v1/smiths/{self.ids['smith']}/tokens", json={}).json()["token"]
        self.minted("a smith token", narrow_token)
        self.step("tokens")
        with self.rec.client(admin["token"]) as other, self.rec.client(narrow_token) as narrow:
            assert other.get("/v1/tokens").status_code == 200
            assert narrow.get(f"/v1/smiths/{self.ids['smith']}").status_code == 200
            assert narrow.get("/v1/tokens").status_code == 403
            assert api.delete(f"/v1/tokens/{admin['id']}").status_code == 200
            assert other.get("/v1/tokens").status_code == 401  # revoked

    def telegram(self, tg: FakeTelegram) -> None:
        """The provider failing, a redirect loop, a refused and a malformed token, then the right one; a deep
        link opened; a forged and a right webhook secret; a send looping and the poller failing."""
        api, v = self.api, self.v
        self.step("telegram connect")
        tg.add_bot(v["tg_token"], "canary_bot")
        tg.server_error_next("getMe")
        assert api.put("/v1/tenant/telegram", json={"bot_token": v["tg_token"]}).status_code >= 400
        tg.redirect_loop_next("getMe", times=HOPS)
        assert api.put("/v1/tenant/telegram", json={"bot_token": v["tg_token"]}).status_code >= 400
        assert api.put("/v1/tenant/telegram", json={"bot_token": v["tg_refused"]}).status_code == 422
        assert api.put("/v1/tenant/telegram", json={"bot_token": v["tg_malformed"]}).status_code == 422
        answer = api.put("/v1/tenant/telegram", json={"bot_token": v["tg_token"]})
        assert answer.status_code == 200, answer.text
        assert api.get("/v1/tenant/telegram").json()["mode"] == "polling"
        sealed = open_sealed(self.data_dir / "ingram.db", v["secret_key"])[1]
        webhook_secret = self.c.issued("Telegram webhook secret (generated)", sealed["telegram.webhook_secret"])

        self.step("telegram deep link")
        link = api.post("/v1/deployments", json={"target": {"type": "smith", "id": self.ids["smith"]},
                                                 "kind": "telegram", "setup": {"mode": "start_token"}}).json()
        start = link["deep_link"].split("start=")[1]
        self.minted("a Telegram deep link (start token)", start)
        self.step("telegram chat")
        chat = random.randint(10_000_000, 99_999_999)
        tg.queue_update(private_message(f"/start {start}", user_id=chat))
        wait_for(lambda: any("connected" in m["text"] for m in tg.sent_messages if m["chat_id"] == chat), "binding")
        update = json.dumps({"update_id": 990001, **private_message("hello by webhook", user_id=chat)}).encode()
        hook, header = "/v1/telegram/webhook/default", "x-telegram-bot-api-secret-token"
        assert self.post_raw(hook, update, {header: v["tg_forged"]}) == 401
        assert self.post_raw(hook, update, {header: webhook_secret}) == 200
        wait_for(lambda: any(m["text"] == "You said: hello by webhook" for m in tg.sent_messages), "the reply")
        tg.redirect_loop_next("sendMessage", times=HOPS)  # the reply's first send loops, then is retried
        tg.queue_update(private_message("hello while looping", user_id=chat, message_id=12))
        wait_for(lambda: any(d["last_error"] for d in all_pages(api, "/v1/deliveries")), "a failed send", 45)
        tg.server_error_next("getUpdates")  # the poller's own error path

    def whatsapp(self, graph: FakeGraph) -> None:
        """A refused token, then the right one; Meta's handshake; a wa.me link opened; a forged signature; a
        send failing with a 500, then with the token expired."""
        api, v = self.api, self.v
        self.step("whatsapp connect")
        graph.tokens.add(v["wa_token"])
        put = {"phone_number_id": PHONE_NUMBER_ID, "access_token": v["wa_refused"], "app_secret": v["wa_secret"]}
        assert api.put("/v1/tenant/whatsapp", json=put).status_code == 422
        answer = api.put("/v1/tenant/whatsapp", json={**put, "access_token": v["wa_token"]})
        assert answer.status_code == 200, answer.text
        verify = api.get("/v1/tenant/whatsapp").json()["verify_token"]
        self.c.issued("WhatsApp verify token (published for Meta)", verify,
                      allowed=["http", "feed", "console", "db", "states"])
        challenge = {"hub.mode": "subscribe", "hub.verify_token": verify, "hub.challenge": "1158201444"}
        assert api.get("/v1/whatsapp/webhook/default", params=challenge).text == "1158201444"
        self.step("whatsapp link")
        link = api.post("/v1/deployments", json={"target": {"type": "smith", "id": self.ids["smith"]},
                                                 "kind": "whatsapp", "setup": {"mode": "start_token"}}).json()
        [greeting] = parse_qs(urlsplit(link["deep_link"]).query)["text"]
        self.minted("a WhatsApp wa.me link (start code)", greeting.split()[-1])
        self.step("whatsapp chat")
        wa_id, hook = f"3069{random.randint(10_000_000, 99_999_999)}", "/v1/whatsapp/webhook/default"

        def person_writes(text: str, app_secret: str = v["wa_secret"]) -> int:
            raw = wa_body(text_message(text, wa_id=wa_id))
            return self.post_raw(hook, raw, wa_sign(raw, app_secret))

        assert person_writes(greeting, app_secret="0" * 32) == 401
        assert person_writes(greeting) == 200
        wait_for(lambda: graph.sent_to(wa_id), "the WhatsApp confirmation")
        graph.server_error_next(times=2)  # the mark-as-read and the reply's first send
        assert person_writes("hello while Meta fails") == 200
        wait_for(lambda: len(graph.sent_to(wa_id)) >= 2, "the WhatsApp reply after a 500", 45)
        graph.expire_token(v["wa_token"])  # Meta stops accepting the token: the next reply is refused
        assert person_writes("hello with an expired token") == 200
        wait_for(lambda: api.get("/v1/tenant/whatsapp").json()["status"] == "error", "the refused token", 45)
        graph.tokens.add(v["wa_token"])

    def slack(self, slack: FakeSlack) -> None:
        """One app with canary credentials, a pasted bot token, Socket Mode's app token and the app factory's
        refresh token; a refused token and Slack failing first; then an OAuth install, a forged and a signed
        event, and the reply's first send failing."""
        api, v = self.api, self.v
        self.step("slack connect")
        client_id = f"{random.randint(10**9, 10**10 - 1)}.{random.randint(10**9, 10**10 - 1)}"
        self.ids["slack_client_id"] = client_id
        slack.add_app(APP_ID, client_id, v["slack_client_secret"], v["slack_signing"])
        slack.add_token(v["slack_bot"], kind="bot", scopes=BOT_SCOPES, user_id=BOT_USER_ID, bot_id=BOT_ID)
        slack.add_token(v["slack_app"], kind="app", scopes=["connections:write"], user_id=None)
        slack.refresh_tokens[v["slack_refresh"]] = (TEAM_ID, INSTALLER_ID)
        put = {"client_id": client_id, "client_secret": v["slack_client_secret"], "signing_secret": v["slack_signing"],
               "bot_token": v["slack_refused"]}
        assert api.put("/v1/tenant/slack", json=put).status_code == 422
        slack.server_error_next("auth.test")
        assert api.put("/v1/tenant/slack", json={**put, "bot_token": v["slack_bot"]}).status_code >= 400
        answer = api.put("/v1/tenant/slack", json={**put, "bot_token": v["slack_bot"], "app_token": v["slack_app"],
                                                   "config_refresh_token": v["slack_refresh"]})
        assert answer.status_code == 200, answer.text
        for token in [*slack.config_tokens, *(t for t in slack.refresh_tokens if t != v["slack_refresh"])]:
            self.c.issued(f"a Slack configuration token issued at rotation ({token[:9]}…)", token)
        self.step("slack install link")
        created = api.post("/v1/deployments", json={"target": {"type": "smith", "id": self.ids["smith"]},
                                                    "kind": "slack", "setup": {"mode": "oauth_install"}}).json()
        self.minted("a Slack install link", created["install_url"].rsplit("/", 1)[1])
        self.step("slack install")  # the link's token is the OAuth state (slack_install.py): its redirect carries it
        self.c.allow("a Slack install link", "http slack install: GET /v1/slack/install/")
        before = set(slack.tokens)
        with self.rec.client(follow_redirects=True) as browser_like:
            assert "connected" in browser_like.get(created["install_url"]).text.lower()
        for token in set(slack.tokens) - before:
            self.c.issued(f"a Slack token issued by oauth.v2.access ({token[:5]}…)", token)
        self.step("slack events")
        seen, hook = len(slack.posted), "/v1/slack/webhook/default"
        raw = json.dumps(event_envelope(message_event("hello from Slack"))).encode()
        assert self.post_raw(hook, raw, slack_sign(raw, secret="f" * 32)) == 401
        slack.server_error_next("chat.postMessage")
        assert self.post_raw(hook, raw, slack_sign(raw, secret=v["slack_signing"])) == 200
        wait_for(lambda: any(m.get("text") == "You said: hello from Slack" for m in slack.posted[seen:]),
                 "the Slack reply after a 500", 45)

    def runs_and_mcp(self, model_api: FakeOpenAI) -> None:
        """Runs with the built-in model, then with an agent's own endpoint and key (answering, then refusing
        it); an MCP endpoint called with its caller token, which /v1 refuses."""
        api, v, smith = self.api, self.v, self.ids["smith"]
        self.step("runs")
        say_hi = {"input": [{"role": "user", "content": "hi"}]}
        run = api.post(f"/v1/smiths/{smith}/runs", json=say_hi).json()
        wait_for(lambda: api.get(f"/v1/runs/{run['id']}").json()["status"] == "completed", "the run")
        self.ids["run"] = run["id"]
        model = {"provider": "openai", "name": "gpt-4o", "base_url": model_api.url, "api_key": v["agent_key"]}
        keyed = api.post("/v1/agents", json={"name": "Own model", "model": model})
        assert keyed.status_code == 201, keyed.text
        keyed_smith = api.post("/v1/smiths", json={"agent_id": keyed.json()["id"], "name": "Own model PA"}).json()
        model_api.push(text("hello from the model"), status(401))
        for outcome in ("completed", "failed"):
            run_id = api.post(f"/v1/smiths/{keyed_smith['id']}/runs", json=say_hi).json()["id"]
            wait_for(lambda r=run_id, o=outcome: api.get(f"/v1/runs/{r}").json()["status"] == o, outcome, 45)
            api.get(f"/v1/runs/{run_id}/events")
        assert model_api.requests[0]["authorization"] == f"Bearer {v['agent_key']}"
        mcp = api.post("/v1/deployments", json={"target": {"type": "smith", "id": smith}, "kind": "mcp"}).json()
        self.step("mint mcp caller token")
        caller = api.post(f"/v1/deployments/{mcp['id']}/tokens", json={"subject": "canary-laptop"}).json()
        self.minted("an MCP caller token", caller["token"])
        self.step("mcp")
        with self.rec.client(caller["token"]) as client:
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "canary", "version": "1"}}}
            assert client.post(f"/v1/deployments/{mcp['id']}/mcp", json=init,
                               headers={"accept": "application/json, text/event-stream"}).status_code == 200
            assert client.get("/v1/smiths").status_code == 403


def test_no_canary_leaks(tmp_path: Path, browser: Browser) -> None:
    canaries = Canaries()
    v = plant(canaries)
    evidence = Evidence()
    data_dir, states_dir = tmp_path / "data", tmp_path / "states"
    model_api = FakeOpenAI()
    model_app = Starlette(routes=[Route("/v1/chat/completions", model_api._completions, methods=["POST"])])
    with (serve_fake_telegram() as tg, serve_fake_slack(consent="allow") as slack, serve_fake_graph() as graph,
          serve_in_thread(model_app, "fake-openai") as model_url):
        model_api.url = f"{model_url}/v1"
        env = {"IC_ADMIN_TOKEN": v["admin_token"], "IC_ADMIN_PASSWORD": v["password"],
               "IC_SECRET_KEY": v["secret_key"], "IC_MODEL_API_KEY": v["model_key"],
               "IC_TELEGRAM_API_URL": tg.url, "IC_SLACK_API_URL": slack.api_url,
               "IC_SLACK_OAUTH_URL": slack.authorize_url, "IC_GRAPH_API_URL": graph.url,
               "REFLEX_STATES_WORKDIR": str(states_dir), "IC_LOG_LEVEL": "DEBUG",
               "IC_ALLOW_PRIVATE_URLS": "true"}  # the fake model endpoint listens on 127.0.0.1
        server = start_server(tmp_path, env)
        try:
            flows = Flows(canaries, v, Recorder(evidence, server.url), data_dir)
            flows.tokens()
            flows.telegram(tg)
            flows.whatsapp(graph)
            flows.slack(slack)
            flows.runs_and_mcp(model_api)
            ids = flows.ids
            link = setup_link({**env, "IC_DATA_DIR": str(data_dir), "IC_PUBLIC_URL": server.url}, evidence)
            try:
                drive_console(browser, server.url, canaries, v, evidence, link, ids)
            except Exception:
                for n, console in enumerate(Console.opened):
                    with contextlib.suppress(Exception):
                        console.page.screenshot(path=str(tmp_path / f"console-{n}-{console.step}.png"))
                raise
            read_everything(flows.api, flows.rec)
            ciphertexts, opened = open_sealed(data_dir / "ingram.db", v["secret_key"])
            for name, value in database_files(data_dir).items():
                evidence.add(f"db {name} (live)", value)
        finally:
            stop_server(server)
        evidence.add("log server.log", server.log())
        for name, value in database_files(data_dir).items():
            evidence.add(f"db {name} (after stop)", value)
        for name, value in database_files(states_dir).items() if states_dir.exists() else ():
            evidence.add(f"states {name}", value)

    # The search can fail: what is allowed somewhere is found there (answers, frames, the command's output), and
    # the database's bytes are readable (a public value is in them). The sealed secrets are there as ciphertext.
    for name, place in (("a Telegram deep link (start token)", "http telegram deep link"),
                        ("a console session token (setup link)", "console ws"),
                        ("the console setup link", "setup-link command")):
        assert any(label.startswith(place) for label in evidence.where(canaries.all[name].mark)), (name, place)
    assert any(label.startswith("db ingram.db") for label in evidence.where(ids["slack_client_id"]))
    for name in ("tg_token", "wa_token", "wa_secret", "slack_client_secret", "slack_signing", "slack_app", "agent_key"):
        assert v[name] in opened.values(), f"{name} is not among the sealed secrets"

    hits = evidence.search(canaries)
    known = {reason: found for reason, test in KNOWN_LEAKS.items() if (found := [h for h in hits if test(h)])}
    unexpected = [h for h in hits if not any(test(h) for test in KNOWN_LEAKS.values())]
    issued = len(canaries.all) - canaries.planted
    print(f"\ncanary secrets: {canaries.planted} canaries planted (+{issued} secrets issued by the product or the "
          f"providers, searched whole); places searched: {len(evidence.kinds())} kinds, {len(evidence.places)} "
          f"places ({', '.join(f'{k} {n}' for k, n in sorted(evidence.kinds().items()))}); bytes searched: "
          f"{evidence.size}; sealed ciphertexts opened: {ciphertexts}; hits: {len(hits)} "
          f"({len(unexpected)} unexpected, {len(hits) - len(unexpected)} in {len(known)} known leaks)")
    assert not unexpected, f"canaries found where they must not be:\n{describe_hits(unexpected)}"
    if known:
        pytest.xfail("known leaks (issue 15 §4): " + "; ".join(
            f"{reason} [{', '.join(sorted({h.canary for h in found}))}]" for reason, found in known.items()))
