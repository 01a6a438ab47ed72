"""Email's kits (tests/fakes/kits.py): the fake Cloudflare API, an inbox made for the smith as the proof
(mail to it is routed by Cloudflare, so it needs no proof from the person: the owner is named by address
and counts only with DMARC's pass), and raw messages signed as our Email Worker signs them."""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any, ClassVar

import httpx

from app.settings import Settings
from channels import get_channel_class
from channels.email_signature import sign
from channels.types import RawRequest
from tests.conftest import bearer
from tests.fakes import cloudflare as fake_cf
from tests.fakes.kits import FakeServer, Flow, Kit, Post, Prompt, ServedFake

INBOX = f"pa@{fake_cf.DOMAIN}"
SECRET = "worker-secret_0123456789abcdef"
PEOPLE = (("dana@example.com", "Dana Reyes"), ("sam@example.org", "Sam Okafor"))
CONNECT = {"account_id": fake_cf.ACCOUNT_ID, "api_token": fake_cf.API_TOKEN, "domain": fake_cf.DOMAIN}


def message(text: str, *, sender: str, name: str = "", to: str = INBOX, subject: str = "",
            dmarc: str = "pass", headers: dict[str, str] | None = None) -> bytes:
    """A person's mail as Cloudflare hands it to the Worker: its MX's Authentication-Results on top."""
    mail = EmailMessage()
    domain = sender.rpartition("@")[2]
    mail["Authentication-Results"] = (f"mx.cloudflare.net; dkim=pass header.d={domain}; spf=pass "
                                      f"smtp.mailfrom={sender}; dmarc={dmarc} header.from={domain}")
    mail["From"] = email.utils.formataddr((name, sender)) if name else sender
    mail["To"] = to
    if subject:
        mail["Subject"] = subject
    mail["Message-ID"] = email.utils.make_msgid(domain=domain)
    for key, value in (headers or {}).items():
        mail[key] = value
    mail.set_content(text)
    return mail.as_bytes()


def signed_headers(body: bytes, *, secret: str = SECRET, to: str = INBOX, sender: str | None = None) -> dict[str, str]:
    if sender is None:
        parsed = email.message_from_bytes(body)
        sender = email.utils.parseaddr(str(parsed.get("From") or ""))[1]
    timestamp = str(int(time.time()))
    return {"content-type": "message/rfc822", "x-ic-timestamp": timestamp, "x-ic-envelope-from": sender,
            "x-ic-envelope-to": to, "x-ic-signature": sign(secret, timestamp, sender, to, body)}


# -- the contract kit (tests/channels/test_contract.py) ---------------------------------------------

def _raw(body: bytes, headers: dict[str, str], method: str = "POST") -> RawRequest:
    return RawRequest(method, "/v1/email/webhook/default", headers, {}, body)


def _tampered(raw: RawRequest) -> list[RawRequest]:
    good = dict(raw.headers)
    stale = signed_headers(raw.body)
    stale["x-ic-timestamp"] = str(int(time.time()) - 3600)
    return [
        _raw(raw.body, {"content-type": "message/rfc822"}),  # unsigned
        _raw(raw.body + b"\n", good),  # a body changed under a valid signature
        _raw(raw.body, {**good, "x-ic-envelope-to": f"ceo@{fake_cf.DOMAIN}"}),  # sent to another inbox
        _raw(raw.body, signed_headers(raw.body, secret=SECRET.upper())),  # another secret
        _raw(raw.body, stale),  # replayed an hour later
        _raw(raw.body, {**good, "x-ic-signature": good["x-ic-signature"].removeprefix("v1=")}),
    ]


@asynccontextmanager
async def _fake() -> AsyncIterator[FakeServer]:
    async with fake_cf.run_fake_cloudflare() as fake:
        actions = {"rate_limited": lambda: fake.fail_sends(10004, 429, retry_after=2),
                   "blocked": lambda: fake.bounce_once.add(PEOPLE[0][0]),
                   "server_error": lambda: fake.fail_sends(10002, 500)}
        yield ServedFake(fake.api_url, lambda failure: actions[failure]())


def _make(url: str) -> Any:
    channel = get_channel_class("email")(
        {"account_id": fake_cf.ACCOUNT_ID, "domain": fake_cf.DOMAIN, "zone_id": fake_cf.ZONE_ID,
         "worker_name": "ingram-email-default"}, {"api_token": fake_cf.API_TOKEN, "webhook_secret": SECRET},
        api_url=url)
    channel.attach_apps({"app_1": {"address": INBOX, "name": "Dana's PA", "settings": {"owner_email": PEOPLE[0][0]}}})
    return channel


CONTRACT = Kit(
    make=_make, sign=lambda body: _raw(body, signed_headers(body)), tampered=_tampered, fake=_fake, address=INBOX,
    text_of=lambda payload: str(payload["text"]),
    malformed=[b"", b"\xff\xfe", b"From: not an address\r\n\r\nhello\r\n", b"Subject: no sender\r\n\r\nhello\r\n"],
)


# -- the flow kit (tests/deployments/test_channel_flows.py) ------------------------------------------

class EmailFlow(Flow):
    kind = "email"
    approves_in_words: ClassVar[bool] = True

    def __init__(self, fake: fake_cf.FakeCloudflare) -> None:
        self.fake = fake
        self.secret = ""

    @classmethod
    @asynccontextmanager
    async def started(cls) -> AsyncIterator[Flow]:
        async with fake_cf.run_fake_cloudflare() as fake:
            yield cls(fake)

    def configure(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, cloudflare_api_url=self.fake.api_url)

    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        answer = await api.put("/v1/tenant/email", json=CONNECT, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        script = self.fake.scripts[answer.json()["worker_name"]]
        self.secret = script["bindings"]["IC_SECRET"]  # what the Worker signs with

    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        created = await api.post("/v1/deployments", headers=bearer(token), json={
            "target": {"type": "smith", "id": smith_id}, "kind": "email",
            "setup": {"mode": "provision", "handle": "pa", "owner_email": PEOPLE[0][0]}})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def identity(self, person: int) -> str:
        return f"email:{PEOPLE[person][0]}"

    def _post(self, body: bytes, *, secret: str | None = None, sender: str | None = None) -> Post:
        return Post("/v1/email/webhook/default", body, signed_headers(body, secret=secret or self.secret,
                                                                      sender=sender))

    def message(self, person: int, text: str) -> Post:
        address, name = PEOPLE[person]
        return self._post(message(text, sender=address, name=name))

    def forged(self, post: Post) -> Post:
        return dataclasses.replace(post, headers=signed_headers(post.body, secret="0" * 32))

    def echo(self, text: str) -> Post:
        # Our own reply coming back (a list or a forward sent it to the inbox): answering it would loop.
        return self._post(message(text, sender=INBOX, name="Dana's PA", headers={"Auto-Submitted": "auto-replied"}))

    def tap(self, person: int, prompt: Prompt) -> Post:
        return self.message(person, str(prompt.approve))  # the prompt says: reply YES to approve

    def replies(self, person: int) -> list[str]:
        return [str(sent["text"]) for sent in self.fake.sent if sent["to"] == PEOPLE[person][0]]

    def prompt(self, person: int) -> Prompt | None:
        for text in reversed(self.replies(person)):
            if "Reply YES to approve" in text:
                return Prompt("yes", None)
        return None

    def refusals(self, person: int) -> list[str]:
        return []  # nobody is told: a stranger's "yes" is an ordinary message to the smith

    def outbound(self) -> int:
        return len(self.fake.sent)


FLOW = EmailFlow
