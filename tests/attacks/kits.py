"""How each channel is armed before its corpus is fired: connected to its fake provider, behind an agent
catch-all (so that anything let through would mint a smith, queue a run and call the provider), proven
to answer a genuine request, and with its key rotated once (so replays of what was genuine before the
rotation can be told apart).

``arm`` returns the ``Context`` the recipes sign with: ``current`` is the key in force, ``previous`` the
one before the rotation, and each kit adds the integration's other secrets (a key mixed up with the
right one is a forgery worth trying). ``await_new_key`` then proves, with pings signed by recipes.py,
that every server process accepts the new key. The later channels' kits have modules of their own
(kit_email.py, kit_linkedin.py); a registered channel without a kit in kit_registry.py's ``KITS`` fails
``test_every_channel_has_a_corpus``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from tests.attacks import corpus, wire
from tests.attacks.corpus import Attack, Captured, Context
from tests.fakes import slack as fake_slack
from tests.fakes import telegram as fake_telegram
from tests.fakes import whatsapp as fake_whatsapp

if TYPE_CHECKING:
    from tests.attacks.conftest import AttackServer

API_VERSION = "2026-05-01"
TENANT = "default"  # the project a fresh install has; its slug is the webhook tenant
REPLY_WAIT_S = 30.0
PINGS = 10  # genuine pings on new connections, before the rotation and (in a row) after it
NEW_KEY_WAIT_S = 30.0  # IC_CHANNEL_CACHE_SECONDS (10) and then some
_serial = itertools.count(int(time.time()) % 1_000_000 * 100)  # provider ids unique across runs


class Kit(ABC):
    kind: ClassVar[str]
    recipe: ClassVar[str]
    content_type: ClassVar[str] = "application/json"
    # Keys shaped like the real ones, to materialise every entry without a server (the corpus check).
    sample_keys: ClassVar[dict[str, str]]

    def __init__(self, server: AttackServer, api: httpx.AsyncClient) -> None:
        self.server, self.api = server, api
        self.rotated_at = 0.0

    @abstractmethod
    async def connect(self, key: str) -> dict[str, Any]:
        """PUT /v1/tenant/<kind> with ``key`` as the signing key; the answer."""

    @abstractmethod
    async def rotate(self) -> str:
        """Replace the signing key the way an admin would; the new key."""

    @abstractmethod
    def message(self, text: str) -> bytes:
        """A genuine webhook body carrying a person's ``text`` (fresh provider ids)."""

    @abstractmethod
    def genuine_headers(self, body: bytes, key: str) -> list[tuple[str, str]]:
        """The provider's own signature of ``body``, from the fake's helpers (not from recipes.py)."""

    @abstractmethod
    def replies(self) -> list[str]:
        """Texts the fake provider was asked to send."""

    def other_keys(self, connected: dict[str, Any]) -> dict[str, str]:
        return {}

    @abstractmethod
    def ping(self) -> bytes:
        """A genuine body the channel reads and ignores (200, nothing stored): to probe which key the
        server accepts without leaving a row."""

    async def arm(self) -> Context:
        """Connect, deploy a catch-all, prove a genuine message is answered (the pipeline a leak would go
        through works), let every server process learn the key, then rotate it."""
        previous = self.initial_key()
        connected = await self.connect(previous)
        previous = self.key_from(connected, previous)
        agent = await self.call("POST", "/v1/agents", {"name": f"Attack target ({self.kind})"}, 201)
        await self.call("POST", "/v1/deployments", {"target": {"type": "agent", "id": agent["id"]},
                                                    "kind": self.kind}, 201)
        text = f"control before rotation {next(_serial)}"
        body = self.message(text)
        path = f"/v1/{self.kind}/webhook/{TENANT}"
        headers = [("Content-Type", self.content_type), *self.genuine_headers(body, previous)]
        answer = await self.api.post(path, content=body, headers=dict(headers))
        assert answer.status_code == 200, f"{self.kind}: the genuine control was refused: {answer.text}"
        await self.wait_for_reply(text)
        # Each server process caches the channel that verifies a tenant's webhooks: pings on new
        # connections reach every granian worker, so after the rotation some may still hold the old key.
        for _ in range(PINGS):
            ping = self.ping()
            pinged = await self.send_raw([("Content-Type", self.content_type), *self.genuine_headers(ping, previous)],
                                         ping)
            assert pinged.status == 200, f"{self.kind}: a genuine ping was refused: {pinged}"
        current = await self.rotate()
        self.rotated_at = time.monotonic()
        assert current != previous
        return Context(keys={"current": current, "previous": previous, **self.other_keys(connected)},
                       tenant=TENANT, captured=Captured("POST", path, headers, body), now=int(time.time()))

    async def await_new_key(self, context: Context) -> float:
        """Seconds from the rotation until the new key, signed by recipes.py, was accepted PINGS times in
        a row on new connections. Proves the recipes sign what the server accepts (else every refusal
        could be for the wrong reason), and waits out processes whose cached channel has the old key."""
        spec = {"path": f"/v1/{self.kind}/webhook/{{tenant}}", "headers": [["Content-Type", self.content_type]],
                "sign": {"recipe": self.recipe, "key": "current"}}
        accepted, deadline = 0, time.monotonic() + NEW_KEY_WAIT_S
        while accepted < PINGS:
            ping = Attack("ping", "control", "POST", 200, None, {**spec, "body": self.ping().decode()})
            answer = await self.send(ping, context)
            accepted = accepted + 1 if answer.status == 200 else 0
            assert answer.status in (200, 401), f"{self.kind}: a genuine ping answered {answer}"
            assert time.monotonic() < deadline, f"{self.kind}: the new key was not accepted within {NEW_KEY_WAIT_S} s"
            if not accepted:
                await asyncio.sleep(0.2)
        return time.monotonic() - self.rotated_at

    def initial_key(self) -> str:
        return ""

    def key_from(self, connected: dict[str, Any], key: str) -> str:
        return key

    async def send_raw(self, headers: list[tuple[str, str]], body: bytes) -> wire.Answer:
        head = wire.build_head("POST", f"/v1/{self.kind}/webhook/{TENANT}", [
            ("Host", corpus.HOST), *headers, ("Content-Length", str(len(body))), ("Connection", "close")])
        return await wire.send(self.server.host, self.server.port, wire.Wire(head, body))

    async def send(self, attack: Attack, context: Context) -> wire.Answer:
        now_context = Context(context.keys, context.tenant, context.captured, int(time.time()))
        return await wire.send(self.server.host, self.server.port, corpus.materialize(attack, now_context))

    async def wait_for_reply(self, text: str) -> None:
        wanted = f"You said: {text}"
        deadline = time.monotonic() + REPLY_WAIT_S
        while wanted not in self.replies():
            assert time.monotonic() < deadline, f"{self.kind}: no reply to the genuine {text!r}"
            await asyncio.sleep(0.05)

    async def call(self, method: str, path: str, body: dict[str, Any] | None, status: int) -> dict[str, Any]:
        answer = await self.api.request(method, path, json=body)
        assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
        return dict(answer.json()) if answer.content else {}


class TelegramKit(Kit):
    kind = "telegram"
    recipe = "telegram_secret_token"
    sample_keys: ClassVar[dict[str, str]] = {  # secrets.token_urlsafe(32), as the server generates them
        "current": "W9JAgea9DvJBpJdOLQoE-_-MWoCGzQlE5V5Lq1ZgDeg",
        "previous": "n3T0xq_Vb8kZr2YhPL6sWd-4cAeFuJmG9tHiOyN1R7Q", "bot_token": fake_telegram.FAKE_TOKEN}

    async def connect(self, key: str) -> dict[str, Any]:
        return await self.call("PUT", "/v1/tenant/telegram", {"bot_token": fake_telegram.FAKE_TOKEN}, 200)

    def key_from(self, connected: dict[str, Any], key: str) -> str:
        return str(self.server.telegram.calls_to("setWebhook")[-1]["secret_token"])  # the server generated it

    async def rotate(self) -> str:
        # The webhook secret is generated when the integration is created and kept by every later PUT:
        # disconnecting and connecting again is how an admin gets a new one.
        await self.call("DELETE", "/v1/tenant/telegram", None, 204)
        connected = await self.connect("")
        return self.key_from(connected, "")

    def other_keys(self, connected: dict[str, Any]) -> dict[str, str]:
        return {"bot_token": fake_telegram.FAKE_TOKEN}

    def message(self, text: str) -> bytes:
        serial = next(_serial)
        update = fake_telegram.private_message(text, user_id=5_550_000 + serial % 1000, update_id=serial)
        return json.dumps(update).encode()

    def genuine_headers(self, body: bytes, key: str) -> list[tuple[str, str]]:
        return [("X-Telegram-Bot-Api-Secret-Token", key)]

    def ping(self) -> bytes:  # an edited message: the product answers only new ones
        serial = next(_serial)
        edited = fake_telegram.private_message("edited", update_id=serial)
        return json.dumps({"update_id": serial, "edited_message": edited["message"]}).encode()

    def replies(self) -> list[str]:
        return [str(m.get("text")) for m in self.server.telegram.sent_messages]


class SlackKit(Kit):
    kind = "slack"
    recipe = "slack_v0"
    ROTATED = "c4a9d2e7f1b05a3e8d6c9b2a7f4e1d03"
    sample_keys: ClassVar[dict[str, str]] = {"current": ROTATED, "previous": fake_slack.SIGNING_SECRET,
                                             "client_secret": fake_slack.CLIENT_SECRET}

    def initial_key(self) -> str:
        return fake_slack.SIGNING_SECRET

    async def connect(self, key: str) -> dict[str, Any]:
        return await self.call("PUT", "/v1/tenant/slack", {
            "client_id": fake_slack.CLIENT_ID, "client_secret": fake_slack.CLIENT_SECRET, "signing_secret": key,
            "bot_token": fake_slack.BOT_TOKEN}, 200)

    async def rotate(self) -> str:
        await self.connect(self.ROTATED)  # Basic Information -> Regenerate, pasted into the form
        return self.ROTATED

    def other_keys(self, connected: dict[str, Any]) -> dict[str, str]:
        return {"client_secret": fake_slack.CLIENT_SECRET}

    def message(self, text: str) -> bytes:
        return json.dumps(fake_slack.event_envelope(fake_slack.message_event(text))).encode()

    def genuine_headers(self, body: bytes, key: str) -> list[tuple[str, str]]:
        return list(fake_slack.sign(body, key).items())

    def ping(self) -> bytes:  # a reaction: not an event the product answers
        event = {"type": "reaction_added", "user": fake_slack.INSTALLER_ID, "reaction": "thumbsup",
                 "item": {"type": "message", "channel": fake_slack.DM_CHANNEL_ID, "ts": fake_slack.new_ts()},
                 "event_ts": fake_slack.new_ts()}
        return json.dumps(fake_slack.event_envelope(event)).encode()

    def replies(self) -> list[str]:
        return [str(m.get("text")) for m in self.server.slack.posted]


class WhatsAppKit(Kit):
    kind = "whatsapp"
    recipe = "meta_sha256"
    ROTATED = "0b7e3f9a1c5d8e2f4a6b9c0d1e3f5a7b"
    CHALLENGE = "1158201444"
    sample_keys: ClassVar[dict[str, str]] = {"current": ROTATED, "previous": fake_whatsapp.APP_SECRET,
                                             "access_token": fake_whatsapp.ACCESS_TOKEN,
                                             "verify_token": "Zt8qL2vN5xR0cW7mK4pH1jB9sD6fG3a"}

    def initial_key(self) -> str:
        return fake_whatsapp.APP_SECRET

    async def connect(self, key: str) -> dict[str, Any]:
        return await self.call("PUT", "/v1/tenant/whatsapp", {
            "phone_number_id": fake_whatsapp.PHONE_NUMBER_ID, "access_token": fake_whatsapp.ACCESS_TOKEN,
            "app_secret": key}, 200)

    async def rotate(self) -> str:
        connected = await self.connect(self.ROTATED)  # App Dashboard -> Reset app secret
        self.verify_token = str(connected["verify_token"])
        return self.ROTATED

    def other_keys(self, connected: dict[str, Any]) -> dict[str, str]:
        assert connected["verify_token"] == self.verify_token, "a new PUT changed the verify token"
        return {"access_token": fake_whatsapp.ACCESS_TOKEN, "verify_token": self.verify_token}

    def message(self, text: str) -> bytes:
        return fake_whatsapp.body(fake_whatsapp.text_message(text))

    def genuine_headers(self, body: bytes, key: str) -> list[tuple[str, str]]:
        return list(fake_whatsapp.sign(body, key).items())

    def ping(self) -> bytes:  # an account update: not a field the product reads
        change = fake_whatsapp.envelope({"event": "VERIFIED_ACCOUNT"}, field="account_update")
        return fake_whatsapp.body(change)

    def replies(self) -> list[str]:
        return [str(m["text"]["body"]) for m in self.server.graph.sent_to(fake_whatsapp.USER_WA_ID)
                if m.get("type") == "text"]

    async def await_new_key(self, context: Context) -> float:
        waited = await super().await_new_key(context)
        handshake = Attack("handshake", "control", "GET", 200, None, {
            "path": "/v1/whatsapp/webhook/{tenant}",
            "query": [["hub.mode", "subscribe"], ["hub.challenge", self.CHALLENGE]],
            "sign": {"recipe": "meta_verify_token", "key": "verify_token"}})
        answer = await self.send(handshake, context)
        assert (answer.status, answer.body) == (200, self.CHALLENGE.encode()), f"the genuine handshake: {answer}"
        return waited


def admin_client(server: AttackServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30, headers={
        "Authorization": f"Bearer {server.server.admin_token}", "IC-Api-Version": API_VERSION})
