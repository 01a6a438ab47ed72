"""LinkedIn's contract kit (tests/fakes/kits.py): the fake LinkedIn, webhooks signed with the client secret as
LinkedIn signs them (documented), and the ASSUMED Page-message bodies (tests/fixtures/linkedin).

``FLOW`` (tests/deployments/test_channel_flows.py) connects through the product's own routes: the PUT, a
consent link followed through the fake's consent screen to the callback, and the messaging switch (LI-1/LI-3);
``go_live`` does the same for other tests. A LinkedIn conversation is one member's, so a smith is bound to a
conversation by address, with the owner an admin names (``setup.owner_member``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from app.settings import Settings
from channels import get_channel_class
from channels.base import Channel
from channels.types import RawRequest
from tests.conftest import bearer
from tests.fakes import linkedin as fake_li
from tests.fakes.kits import FakeServer, Flow, Kit, Post, Prompt, ServedFake

PATH = "/v1/linkedin/webhook/default"


def make(url: str) -> Channel:
    """A channel whose messaging is live: consent given, messaging switched on (LI-3's gate open)."""
    return get_channel_class("linkedin")(
        {"client_id": fake_li.CLIENT_ID, "page_urn": fake_li.PAGE_URN, "messaging_enabled": True,
         "consent_member": fake_li.ADMIN_URN, "oauth_url": url},
        {"client_secret": fake_li.CLIENT_SECRET, "access_token": fake_li.ACCESS_TOKEN,
         "refresh_token": fake_li.REFRESH_TOKEN}, api_url=url)


def _raw(body: bytes, headers: dict[str, str], method: str = "POST") -> RawRequest:
    return RawRequest(method, PATH, headers, {}, body)


def sign(body: bytes) -> RawRequest:
    """Events are signed as posted; a ``challenge_*`` fixture holds the validation GET's query."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "challengeCode" in data:
        return RawRequest("GET", PATH, {}, {k: str(v) for k, v in data.items()}, b"")
    return _raw(body, {"Content-Type": "application/json", **fake_li.sign(body)})


def tampered(raw: RawRequest) -> list[RawRequest]:
    good = raw.headers["x-li-signature"]
    unprefixed = hmac.new(fake_li.CLIENT_SECRET.encode(), raw.body, hashlib.sha256).hexdigest()
    return [
        _raw(raw.body, {"content-type": "application/json"}),  # unsigned
        _raw(raw.body, {"x-li-signature": good[:-1] + ("0" if good[-1] != "0" else "1")}),
        _raw(raw.body + b" ", {"x-li-signature": good}),  # a body swapped under a valid header
        _raw(raw.body, fake_li.sign(raw.body, client_secret=fake_li.CLIENT_SECRET.upper())),
        _raw(raw.body, {"x-li-signature": f"hmacsha256={good}"}),
        _raw(raw.body, {"x-li-signature": unprefixed}),  # signed without LinkedIn's "hmacsha256=" prefix
        _raw(raw.body, {"x-li-signature": ""}),
        RawRequest("PUT", PATH, raw.headers, {}, raw.body),
    ]


@asynccontextmanager
async def fake() -> AsyncIterator[FakeServer]:
    async with fake_li.run_fake_linkedin() as served:
        yield ServedFake(served.url, served.inject)


def _message(**fields: Any) -> bytes:
    base: dict[str, Any] = {"type": "PAGE_MESSAGE", "organization": fake_li.PAGE_URN, "from": fake_li.MEMBER_URN,
                            "thread": fake_li.THREAD, "text": "hi", "createdAt": 1767225600000}
    return json.dumps({k: v for k, v in {**base, **fields}.items() if v is not None}).encode()


CONTRACT = Kit(
    make=make, sign=sign, tampered=tampered, fake=fake, address=fake_li.THREAD,
    text_of=lambda payload: str(payload["text"]),
    malformed=[b"{not json", b"\xff\xfe", b"[1, 2]", b'"PAGE_MESSAGE"',
               _message(organization=None), _message(organization="urn:li:company:1"),
               _message(**{"from": None}), _message(**{"from": "Dana Vex"}), _message(thread=None),
               _message(thread="two words"), _message(text=42), _message(createdAt="yesterday"),
               _message(id=["x"])],
)


# -- connecting through the product (LI-1) -----------------------------------------------------------

CONNECT = {"client_id": fake_li.CLIENT_ID, "client_secret": fake_li.CLIENT_SECRET, "page_urn": fake_li.PAGE_URN}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def consent(api: httpx.AsyncClient, token: str, fake: fake_li.FakeLinkedIn) -> httpx.Response:
    """A consent link made by the admin API, opened, accepted at the fake's consent screen, and LinkedIn's
    redirect followed back to the product's callback (in the same browser: the state cookie goes along)."""
    made = await api.post("/v1/tenant/linkedin/consent", headers=bearer(token))
    assert made.status_code == 201, made.text
    opened = await api.get(_path(made.json()["url"]))
    assert opened.status_code == 302, opened.text
    async with httpx.AsyncClient() as browser:
        at_linkedin = await browser.get(opened.headers["location"])
    assert at_linkedin.status_code == 302, at_linkedin.text
    return await api.get(_path(at_linkedin.headers["location"]))  # the client keeps the state cookie


async def go_live(api: httpx.AsyncClient, token: str, fake: fake_li.FakeLinkedIn) -> dict[str, Any]:
    """Connected, consented, messaging switched on: the integration as GET shows it."""
    connected = await api.put("/v1/tenant/linkedin", json=CONNECT, headers=bearer(token))
    assert connected.status_code == 200, connected.text
    consented = await consent(api, token, fake)
    assert consented.status_code == 200 and "consent given" in consented.text, consented.text
    switched = await api.patch("/v1/tenant/linkedin", json={"messaging_enabled": True}, headers=bearer(token))
    assert switched.status_code == 200 and switched.json()["messaging_enabled"] is True, switched.text
    return dict(switched.json())


# -- the flow kit (tests/deployments/test_channel_flows.py) ------------------------------------------

PEOPLE = [(fake_li.MEMBER_URN, fake_li.MEMBER_NAME, fake_li.THREAD),
          (fake_li.OTHER_MEMBER_URN, fake_li.OTHER_MEMBER_NAME, fake_li.OTHER_THREAD)]


class LinkedInFlow(Flow):
    kind = "linkedin"
    approves_in_words: ClassVar[bool] = True  # APR-3: "yes" approves
    stranger_reaches_the_smith: ClassVar[bool] = False

    def __init__(self, fake: fake_li.FakeLinkedIn) -> None:
        self.fake = fake

    @classmethod
    @asynccontextmanager
    async def started(cls) -> AsyncIterator[Flow]:
        async with fake_li.run_fake_linkedin() as fake:
            yield cls(fake)

    def configure(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, linkedin_api_url=self.fake.url)

    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        await go_live(api, token, self.fake)

    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        created = await api.post("/v1/deployments", headers=bearer(token), json={
            "target": {"type": "smith", "id": smith_id}, "kind": "linkedin", "address": PEOPLE[0][2],
            "setup": {"owner_member": PEOPLE[0][0]}})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def identity(self, person: int) -> str:
        return f"linkedin:{PEOPLE[person][0]}"

    def _post(self, payload: dict[str, Any], secret: str = fake_li.CLIENT_SECRET) -> Post:
        raw, headers = fake_li.signed_webhook(payload, secret)
        return Post(PATH, raw, headers)

    def message(self, person: int, text: str) -> Post:
        urn, name, thread = PEOPLE[person]
        return self._post(fake_li.page_message(text, sender=urn, name=name, thread=thread))

    def forged(self, post: Post) -> Post:
        return Post(post.path, post.body, {"Content-Type": "application/json",
                                           **fake_li.sign(post.body, "WPL_AP1.notTheSecret.AAAA==")})

    def echo(self, text: str) -> Post:  # the Page's own message in the conversation
        return self._post(fake_li.page_message(text, sender=fake_li.PAGE_URN, name=None, thread=PEOPLE[0][2]))

    def tap(self, person: int, prompt: Prompt) -> Post:
        return self.message(person, str(prompt.approve))  # the prompt says: reply YES to approve

    def replies(self, person: int) -> list[str]:
        return [str(sent["text"]) for sent in self.fake.sent_to(PEOPLE[person][2])]

    def prompt(self, person: int) -> Prompt | None:
        for text in reversed(self.replies(person)):
            if "Reply YES to approve" in text:
                return Prompt("yes", None)
        return None

    def refusals(self, person: int) -> list[str]:
        return []  # nobody is told: a stranger's "yes" is an ordinary message in their own conversation

    def outbound(self) -> int:
        return len(self.fake.sent)


FLOW = LinkedInFlow
