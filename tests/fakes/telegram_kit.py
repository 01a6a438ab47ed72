"""Telegram's flow kit (tests/fakes/flows.py): the fake Bot API, a deep link's /start as the proof, and
updates posted with the webhook's secret token header."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.settings import Settings
from channels import get_channel_class
from channels.types import RawRequest
from tests.conftest import bearer
from tests.fakes.kits import FakeServer, Flow, Kit, Post, Prompt, ServedFake, start_link
from tests.fakes.telegram import (
    FAKE_BOT_USERNAME,
    FAKE_TOKEN,
    FakeTelegram,
    bot_user,
    callback_query,
    private_message,
    run_fake_telegram,
)

PEOPLE = ((5551234, "Dana"), (5559876, "Sam"))
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SENDS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"})


# -- the contract kit (tests/channels/test_contract.py) ---------------------------------------------

TG_SECRET = "wh-secret_0123456789abcdef"


def _tg_raw(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest("POST", "/v1/telegram/webhook/default", headers, {}, body)


def _tg_tampered(raw: RawRequest) -> list[RawRequest]:
    good = raw.headers["x-telegram-bot-api-secret-token"]
    return [
        _tg_raw(raw.body, {"content-type": "application/json"}),
        _tg_raw(raw.body, {"x-telegram-bot-api-secret-token": good[:-1] + ("x" if good[-1] != "x" else "y")}),
        _tg_raw(raw.body, {"x-telegram-bot-api-secret-token": ""}),
        _tg_raw(raw.body, {"x-telegram-bot-api-secret-token": good + "0"}),
    ]


@asynccontextmanager
async def _tg_fake() -> AsyncIterator[FakeServer]:
    async with run_fake_telegram() as tg:
        actions = {"rate_limited": lambda: tg.rate_limit_next("sendMessage", retry_after=3),
                   "blocked": lambda: tg.block_next("sendMessage"),
                   "server_error": lambda: tg.server_error_next("sendMessage")}
        yield ServedFake(tg.url, lambda failure: actions[failure]())



CONTRACT = Kit(
    make=lambda url: get_channel_class("telegram")(
        {"bot_username": FAKE_BOT_USERNAME}, {"bot_token": FAKE_TOKEN, "webhook_secret": TG_SECRET},
        api_url=url),
    sign=lambda body: _tg_raw(body, {"Content-Type": "application/json",
                                     "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}),
    tampered=_tg_tampered,
    fake=_tg_fake,
    address="5551234",
    text_of=lambda payload: payload["text"],
    malformed=[b"{not json", b"\xff\xfe", b"[1, 2]", b'{"update_id": "1"}',
               b'{"update_id": 1, "message": {"message_id": 1}}'],
)


# -- the flow kit (tests/deployments/test_channel_flows.py) ------------------------------------------

class TelegramFlow(Flow):
    kind = "telegram"

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self._ids = itertools.count(1000)
        self._tappers: dict[str, int] = {}  # callback query id -> person

    @classmethod
    @asynccontextmanager
    async def started(cls) -> AsyncIterator[Flow]:
        async with run_fake_telegram() as fake:
            yield cls(fake)

    def configure(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, telegram_api_url=self.fake.url)

    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        answer = await api.put("/v1/tenant/telegram", json={"bot_token": FAKE_TOKEN}, headers=bearer(token))
        assert answer.status_code == 200, answer.text

    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        link = await start_link(api, token, smith_id, "telegram", "start_token")
        start = link["deep_link"].split("start=")[1]
        assert (await self.message(0, f"/start {start}").send(api)).status_code == 200
        return str(link["id"])

    def identity(self, person: int) -> str:
        return f"telegram:{PEOPLE[person][0]}"

    def _post(self, update: dict[str, Any], secret: str | None = None) -> Post:
        secret = secret if secret is not None else str(self.fake.calls_to("setWebhook")[-1]["secret_token"])
        return Post("/v1/telegram/webhook/default", json.dumps(update).encode(),
                    {"content-type": "application/json", SECRET_HEADER: secret})

    def message(self, person: int, text: str) -> Post:
        user_id, name = PEOPLE[person]
        number = next(self._ids)
        return self._post(private_message(text, user_id=user_id, first_name=name, message_id=number, update_id=number))

    def forged(self, post: Post) -> Post:
        good = post.headers[SECRET_HEADER]
        return dataclasses.replace(post, headers={**post.headers, SECRET_HEADER: good[:-1] + ("x" if good[-1] != "x"
                                                                                                   else "y")})

    def echo(self, text: str) -> Post:
        update = private_message(text, update_id=next(self._ids))
        update["message"]["from"] = {**bot_user(FAKE_TOKEN), "is_bot": True}  # the bot's own message
        return self._post(update)

    def tap(self, person: int, prompt: Prompt) -> Post:
        query_id = f"q{next(self._ids)}"
        self._tappers[query_id] = person
        update = callback_query(prompt.approve, user_id=PEOPLE[person][0], message_id=int(prompt.message),
                                query_id=query_id, update_id=next(self._ids))
        update["callback_query"]["message"]["chat"]["id"] = PEOPLE[0][0]  # the prompt is in Dana's chat
        return self._post(update)

    def replies(self, person: int) -> list[str]:
        return [m["text"] for m in self.fake.sent_messages if str(m.get("chat_id")) == str(PEOPLE[person][0])]

    def prompt(self, person: int) -> Prompt | None:
        for sent in reversed(self.fake.sent_messages):
            markup = sent.get("reply_markup") or {}
            if str(sent.get("chat_id")) == str(PEOPLE[person][0]) and markup.get("inline_keyboard"):
                return Prompt(markup["inline_keyboard"][0][0]["callback_data"], sent["message_id"])
        return None

    def refusals(self, person: int) -> list[str]:
        return [str(a.get("text") or "") for a in self.fake.callback_answers
                if self._tappers.get(str(a.get("callback_query_id"))) == person]

    def outbound(self) -> int:
        return sum(1 for method, _ in self.fake.calls if method in SENDS)


FLOW = TelegramFlow
