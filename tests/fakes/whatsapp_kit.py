"""WhatsApp's flow kit (tests/fakes/flows.py): the fake Graph API, a wa.me link's greeting as the proof, and
webhooks signed with the app secret as Meta signs them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.settings import Settings
from channels import get_channel_class
from channels.types import RawRequest
from tests.conftest import bearer
from tests.fakes import whatsapp as fake_wa
from tests.fakes.kits import FakeServer, Flow, Kit, Post, Prompt, ServedFake, start_link

PEOPLE = ((fake_wa.USER_WA_ID, fake_wa.USER_NAME), (fake_wa.OTHER_WA_ID, fake_wa.OTHER_NAME))
NUMBER = {"phone_number_id": fake_wa.PHONE_NUMBER_ID, "access_token": fake_wa.ACCESS_TOKEN,
          "app_secret": fake_wa.APP_SECRET}


# -- the contract kit (tests/channels/test_contract.py) ---------------------------------------------

WA_VERIFY_TOKEN = "wa-verify_0123456789abcdef"  # challenge_subscribe.json carries it


def _wa_raw(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest("POST", "/v1/whatsapp/webhook/default", headers, {}, body)


def _wa_sign(body: bytes) -> RawRequest:
    """Events are signed as posted; a challenge fixture holds the handshake's query, sent as a GET."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "hub.mode" in data:
        return RawRequest("GET", "/v1/whatsapp/webhook/default", {}, {k: str(v) for k, v in data.items()}, b"")
    return _wa_raw(body, {"Content-Type": "application/json", **fake_wa.sign(body)})


def _wa_tampered(raw: RawRequest) -> list[RawRequest]:
    good = raw.headers["x-hub-signature-256"]
    return [
        _wa_raw(raw.body, {"content-type": "application/json"}),
        _wa_raw(raw.body, {"x-hub-signature-256": good[:-1] + ("0" if good[-1] != "0" else "1")}),
        _wa_raw(raw.body + b" ", {"x-hub-signature-256": good}),  # a body swapped under a valid header
        _wa_raw(raw.body, fake_wa.sign(raw.body, app_secret=fake_wa.APP_SECRET.upper())),
        _wa_raw(raw.body, {"x-hub-signature-256": good.removeprefix("sha256=")}),
        _wa_raw(raw.body, {"x-hub-signature": "sha1=" + "0" * 40}),  # the legacy SHA-1 header alone
        RawRequest("PUT", raw.path, raw.headers, {}, raw.body),
    ]


@asynccontextmanager
async def _wa_fake() -> AsyncIterator[FakeServer]:
    async with fake_wa.run_fake_graph() as fake:
        actions = {"rate_limited": fake.rate_limit_next, "blocked": fake.block_next,
                   "server_error": fake.server_error_next}
        yield ServedFake(fake.url, lambda failure: actions[failure]())


WA_METADATA = b'"metadata": {"phone_number_id": "' + fake_wa.PHONE_NUMBER_ID.encode() + b'"}, '


def _wa_change(value: bytes) -> bytes:
    return (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {'
            + value + b'}}]}]}')


def _wa_text(payload: dict[str, Any]) -> str:
    if payload["type"] == "interactive":
        return str(payload["interactive"]["body"]["text"])
    return str(payload["text"]["body"])



CONTRACT = Kit(
    make=lambda url: get_channel_class("whatsapp")(
        {"phone_number_id": fake_wa.PHONE_NUMBER_ID,
         "display_phone_number": fake_wa.DISPLAY_PHONE_NUMBER},
        {"access_token": fake_wa.ACCESS_TOKEN, "app_secret": fake_wa.APP_SECRET,
         "verify_token": WA_VERIFY_TOKEN}, api_url=url),
    sign=_wa_sign, tampered=_wa_tampered, fake=_wa_fake, address=fake_wa.USER_WA_ID, text_of=_wa_text,
    malformed=[b"{not json", b"\xff\xfe", b"[1, 2]", b'{"object": "whatsapp_business_account", "entry": "x"}',
               b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}',
               _wa_change(b'"metadata": {}, "messages": []'),  # which number it is for
               _wa_change(WA_METADATA + b'"messages": [{"type": "text", "text": {"body": "no id"}}]'),
               _wa_change(WA_METADATA + b'"messages": {"id": "wamid.x"}'),
               _wa_change(WA_METADATA + b'"statuses": [{"id": "wamid.x", "status": "exploded"}]')],
)


# -- the flow kit (tests/deployments/test_channel_flows.py) ------------------------------------------

class WhatsAppFlow(Flow):
    kind = "whatsapp"

    def __init__(self, fake: fake_wa.FakeGraph) -> None:
        self.fake = fake

    @classmethod
    @asynccontextmanager
    async def started(cls) -> AsyncIterator[Flow]:
        async with fake_wa.run_fake_graph() as fake:
            yield cls(fake)

    def configure(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, graph_api_url=self.fake.url)

    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        answer = await api.put("/v1/tenant/whatsapp", json=NUMBER, headers=bearer(token))
        assert answer.status_code == 200, answer.text

    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        link = await start_link(api, token, smith_id, "whatsapp", "start_token")
        [greeting] = parse_qs(urlsplit(link["deep_link"]).query)["text"]  # what the person's phone sends
        assert (await self.message(0, greeting).send(api)).status_code == 200
        return str(link["id"])

    def identity(self, person: int) -> str:
        return f"whatsapp:{PEOPLE[person][0]}"

    @staticmethod
    def _post(payload: dict[str, Any], secret: str = fake_wa.APP_SECRET) -> Post:
        raw = fake_wa.body(payload)
        return Post("/v1/whatsapp/webhook/default", raw, {"content-type": "application/json",
                                                          **fake_wa.sign(raw, secret)})

    def message(self, person: int, text: str) -> Post:
        wa_id, name = PEOPLE[person]
        return self._post(fake_wa.text_message(text, wa_id=wa_id, name=name))

    def forged(self, post: Post) -> Post:
        return dataclasses.replace(post, headers={**post.headers, **fake_wa.sign(post.body, "0" * 32)})

    def echo(self, text: str) -> Post:
        # The business's own number writing in: answering it would loop.
        return self._post(fake_wa.text_message(text, wa_id=fake_wa.BUSINESS_NUMBER, name=fake_wa.VERIFIED_NAME))

    def tap(self, person: int, prompt: Prompt) -> Post:
        wa_id, name = PEOPLE[person]
        return self._post(fake_wa.button_reply(prompt.approve, "Approve", context_id=str(prompt.message),
                                               wa_id=wa_id, name=name))

    def _texts(self, person: int) -> list[tuple[dict[str, Any], str]]:
        return [(m, m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"])
                for m in self.fake.sent_to(PEOPLE[person][0])]

    def replies(self, person: int) -> list[str]:
        return [text for _, text in self._texts(person)]

    def prompt(self, person: int) -> Prompt | None:
        for message, _ in reversed(self._texts(person)):
            buttons = message.get("interactive", {}).get("action", {}).get("buttons", [])
            if buttons and buttons[0]["reply"]["title"] == "Approve":
                return Prompt(buttons[0]["reply"]["id"], message["wamid"])
        return None

    def refusals(self, person: int) -> list[str]:
        return [text for message, text in self._texts(person) if message.get("context")]  # replies quoting the tap

    def outbound(self) -> int:
        return len(self.fake.sent) + len(self.fake.read_marks)


FLOW = WhatsAppFlow
