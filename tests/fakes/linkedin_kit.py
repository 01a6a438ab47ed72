"""LinkedIn's contract kit (tests/fakes/kits.py): the fake LinkedIn, webhooks signed with the client secret as
LinkedIn signs them (documented), and the ASSUMED Page-message bodies (tests/fixtures/linkedin).

Only ``CONTRACT`` is here. The end-to-end ``FLOW`` (tests/deployments/test_channel_flows.py) needs the product's
LinkedIn routes (the consent callback, the agent catch-all of LI-2), which this kit does not assume.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from channels import get_channel_class
from channels.base import Channel
from channels.types import RawRequest
from tests.fakes import linkedin as fake_li
from tests.fakes.kits import FakeServer, Kit, ServedFake

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
