"""The Telegram channel: parsing real update shapes, and python-telegram-bot against the fake server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from telegram import Bot
from telegram.error import Conflict

from channels import telegram as tgmod
from channels.errors import MalformedPayload, SetupError
from channels.ptb_aiohttp import AiohttpRequest
from channels.telegram import TelegramChannel, deep_link, webhook_possible
from channels.types import ApprovalPrompt, InboundAction, InboundMessage, Outbound, RawRequest, TapAnswer
from tests.fakes.telegram import (
    FAKE_BOT_USERNAME,
    FAKE_TOKEN,
    FakeTelegram,
    callback_query,
    private_message,
    run_fake_telegram,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram" / "in"
SECRET = "wh-secret_0123456789abcdef"
DANA = "5551234"


def make(api_url: str = "http://127.0.0.1:9", **config: Any) -> TelegramChannel:
    config.setdefault("bot_username", FAKE_BOT_USERNAME)
    return TelegramChannel(config, {"bot_token": FAKE_TOKEN, "webhook_secret": SECRET}, api_url=api_url)


def raw(body: bytes | dict[str, Any], secret: str | None = SECRET) -> RawRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return RawRequest("POST", "/v1/telegram/webhook/default", headers, {}, data)


def fixture(name: str) -> RawRequest:
    return raw((FIXTURES / f"{name}.json").read_bytes())


@pytest.fixture
async def offline() -> AsyncIterator[TelegramChannel]:
    async with make() as ch:
        yield ch


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake


@pytest.fixture
async def channel(tg: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    async with make(tg.url) as ch:
        yield ch


# -- verify ----------------------------------------------------------------------------------------

def test_verify_compares_the_secret_header(offline: TelegramChannel) -> None:
    body = (FIXTURES / "private_text.json").read_bytes()
    assert offline.verify(raw(body)).kind == "accept"
    lower = RawRequest("POST", "/", {"x-telegram-bot-api-secret-token": SECRET}, {}, body)
    assert offline.verify(lower).kind == "accept"  # header names are case-insensitive
    assert offline.verify(raw(body, secret=None)).reason == "missing secret token header"
    assert offline.verify(raw(body, secret=SECRET.upper())).kind == "reject"


async def test_verify_rejects_everything_without_a_configured_secret() -> None:
    async with TelegramChannel({}, {"bot_token": FAKE_TOKEN}, api_url="http://127.0.0.1:9") as ch:
        assert ch.verify(raw(b"{}", secret="")).kind == "reject"


# -- parse -----------------------------------------------------------------------------------------

def test_private_text(offline: TelegramChannel) -> None:
    [msg] = offline.parse(fixture("private_text"))
    assert msg == InboundMessage(
        dedupe_key="update:900010", address=DANA, thread=None,
        sender_id="telegram:5551234",  # ID-2: the Telegram user id, never the display name
        sender_display="Dana Vex", text="what's on today?", start_payload=None, is_direct=True,
        provider_message_id="10",
    )


def test_start_payload(offline: TelegramChannel) -> None:
    # TG-2: tapping the deep link sends "/start <token>"
    [msg] = offline.parse(fixture("start_with_payload"))
    assert isinstance(msg, InboundMessage)
    assert (msg.start_payload, msg.text, msg.is_direct) == ("bnd_4f9a2c", "/start bnd_4f9a2c", True)


@pytest.mark.parametrize(("text", "payload"), [
    ("/start", None), ("/start ", None), ("/start a b", None), ("/start " + "x" * 65, None),
    ("/start " + "x" * 64, "x" * 64), ("/start@ingram_test_bot tok-1_A", "tok-1_A"), ("hello /start tok", None),
])
def test_start_payload_is_strict(offline: TelegramChannel, text: str, payload: str | None) -> None:
    [msg] = offline.parse(raw(private_message(text, update_id=5)))
    assert isinstance(msg, InboundMessage) and msg.start_payload == payload


def test_any_direct_message_parses_without_a_link(offline: TelegramChannel) -> None:
    # TG-3: an agent catch-all needs no binding; every DM carries its sender's own identity.
    a, b = (offline.parse(raw(private_message("hi", user_id=uid, update_id=uid)))[0] for uid in (1001, 1002))
    assert (a.sender_id, b.sender_id) == ("telegram:1001", "telegram:1002")


def test_group_mention_is_addressed_and_stripped(offline: TelegramChannel) -> None:
    [msg] = offline.parse(fixture("group_mention"))
    assert isinstance(msg, InboundMessage)
    assert (msg.address, msg.is_direct, msg.text) == ("-1001987654321", False, "summarise this thread 📎")
    assert msg.sender_id == "telegram:6662345" and msg.start_payload is None


def test_group_mention_offsets_are_utf16(offline: TelegramChannel) -> None:
    text = "📎🙂 hey @Ingram_Test_Bot do it"  # two astral emoji = 4 UTF-16 units
    update = {"update_id": 9, "message": {
        "message_id": 1, "date": 1767225600, "from": {"id": 7, "is_bot": False, "first_name": "R"},
        "chat": {"id": -100, "type": "supergroup", "title": "G"}, "text": text,
        "entities": [{"type": "mention", "offset": 9, "length": 16}]}}
    [msg] = offline.parse(raw(update))
    assert isinstance(msg, InboundMessage) and msg.text == "📎🙂 hey do it"


def test_group_command_and_reply(offline: TelegramChannel) -> None:
    [cmd] = offline.parse(fixture("group_command_at_bot"))
    assert isinstance(cmd, InboundMessage) and cmd.text == "/status today"
    [reply] = offline.parse(fixture("group_reply_to_bot"))
    assert isinstance(reply, InboundMessage) and reply.text == "and tomorrow?" and reply.address == "-4012345678"


async def test_group_mention_needs_the_username() -> None:
    async with make(bot_username="") as ch:
        assert ch.parse(fixture("group_mention")) == []
        assert len(ch.parse(fixture("group_reply_to_bot"))) == 1  # replies are still recognised by id


@pytest.mark.parametrize("name", ["ignored_group_not_addressed", "ignored_edited_message", "echo_bot_message",
                                  "echo_own_message", "ignored_channel_post", "ignored_my_chat_member_kicked",
                                  "ignored_photo_without_text"])
def test_ignored_updates(offline: TelegramChannel, name: str) -> None:
    assert offline.parse(fixture(name)) == []


def test_callback_query_is_an_action(offline: TelegramChannel) -> None:
    # APR-2: the button's callback_data comes back as the opaque token
    [action] = offline.parse(fixture("callback_query"))
    assert action == InboundAction(
        dedupe_key="update:900002", address=DANA, thread=None, sender_id="telegram:5551234",
        sender_display="Dana", token="apv:run_01:approve", provider_message_id="12",
        action_id="4382bfdwdsb323b2d9",
    )


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"update_id": 1.5}',
                                  b'{"update_id": 1, "callback_query": {"id": "x"}}'])
def test_malformed(offline: TelegramChannel, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        offline.parse(raw(body))


def test_unknown_update_kinds_are_ignored(offline: TelegramChannel) -> None:
    assert offline.parse(raw({"update_id": 3, "message_reaction_2030": {"x": 1}})) == []


# -- render ----------------------------------------------------------------------------------------

def test_long_text_is_measured_in_utf16(offline: TelegramChannel) -> None:
    text = "🙂" * 3000  # 3000 characters, 6000 UTF-16 units
    payloads = offline.render(Outbound(text))
    assert len(payloads) == 2 and "".join(p["text"] for p in payloads) == text
    assert all(offline.measure(p["text"]) <= tgmod.MAX_TEXT for p in payloads)


def test_oversized_callback_data_degrades_to_text(offline: TelegramChannel) -> None:
    # callback_data is 1-64 BYTES: an emoji token this long cannot be a button
    prompt = ApprovalPrompt("Go?", "a" * 65, "r")
    [payload] = offline.render(Outbound("", approval=prompt))
    assert "reply_markup" not in payload
    assert payload["text"] == "Go?\n\nReply YES to approve or NO to reject."


def test_duplicate_or_blank_chips_degrade(offline: TelegramChannel) -> None:
    for chips in (["Yes", "Yes"], ["Yes", " "]):
        [payload] = offline.render(Outbound("Pick", chips))
        assert "reply_markup" not in payload and payload["text"].startswith("Pick\n\n1. ")


def test_chips_are_laid_out_two_per_row(offline: TelegramChannel) -> None:
    [payload] = offline.render(Outbound("Pick", ["A", "B", "C"]))  # CHIP-2
    assert payload["reply_markup"]["keyboard"] == [[{"text": "A"}, {"text": "B"}], [{"text": "C"}]]


def test_secrets_are_validated() -> None:
    with pytest.raises(ValidationError):
        TelegramChannel({}, {"bot_token": "not a token"}, api_url="http://x")
    with pytest.raises(ValidationError):
        TelegramChannel({}, {"bot_token": FAKE_TOKEN, "webhook_secret": "spaces are bad"}, api_url="http://x")
    generated = TelegramChannel.generated_secrets()
    TelegramChannel.Secrets(bot_token=FAKE_TOKEN, **generated)  # a valid secret_token


# -- against the fake Bot API ----------------------------------------------------------------------

async def test_get_me_and_bad_token(tg: FakeTelegram, channel: TelegramChannel) -> None:
    me = await channel.get_me()  # TG-1: the token is validated
    assert me.username == FAKE_BOT_USERNAME and me.id == 123456789
    async with TelegramChannel({}, {"bot_token": "42:wrong"}, api_url=tg.url) as bad:
        with pytest.raises(SetupError) as err:
            await bad.get_me()
    assert err.value.code == "invalid_token"


async def test_set_webhook_sends_secret_and_allowed_updates(tg: FakeTelegram, channel: TelegramChannel) -> None:
    # TG-1: the server registers its own webhook
    assert await channel.set_webhook("https://ingram.example.com/v1/telegram/webhook/default", SECRET)
    [params] = tg.calls_to("setWebhook")
    assert params["secret_token"] == SECRET
    assert params["allowed_updates"] == ["message", "callback_query"]  # JSON inside a form field
    info = await channel.get_webhook_info()
    assert info["url"].startswith("https://ingram.example.com/") and info["allowed_updates"]
    assert await channel.delete_webhook()
    assert (await channel.get_webhook_info())["url"] == ""


async def test_setup_chooses_webhook_or_polling(tg: FakeTelegram, channel: TelegramChannel) -> None:
    info = await channel.setup(webhook_url="https://ingram.example.com/v1/telegram/webhook/default")
    assert (info.mode, info.bot_username) == ("webhook", FAKE_BOT_USERNAME)
    assert info.deep_link_base == f"https://t.me/{FAKE_BOT_USERNAME}"
    assert tg.webhook["secret_token"] == SECRET
    assert SECRET not in json.dumps(info.details) + " ".join(info.steps)
    info = await channel.setup(webhook_url="http://localhost:8000/v1/telegram/webhook/default")
    assert info.mode == "polling" and tg.webhook["url"] == "" and info.steps
    await channel.teardown()
    assert [m for m, _ in tg.calls][-1] == "deleteWebhook"


async def test_setup_with_a_bad_token_fails_clearly(tg: FakeTelegram) -> None:
    async with TelegramChannel({}, {"bot_token": "42:wrong"}, api_url=tg.url) as bad:
        with pytest.raises(SetupError):
            await bad.setup(webhook_url="https://ingram.example.com/hook")


async def test_send_with_reply_keyboard(tg: FakeTelegram, channel: TelegramChannel) -> None:
    # CHIP-2: a one-time reply keyboard
    [payload] = channel.render(Outbound("Book the 10:00 slot?", ["Yes, book it", "Not now"]))
    result = await channel.send(DANA, payload)
    assert result.ok and result.provider_message_id == str(tg.sent_messages[0]["message_id"])
    sent = tg.sent_messages[0]
    assert sent["chat_id"] == 5551234 and sent["text"] == "Book the 10:00 slot?"
    assert sent["reply_markup"] == {"keyboard": [[{"text": "Yes, book it"}, {"text": "Not now"}]],
                                    "one_time_keyboard": True, "resize_keyboard": True}


async def test_send_approval_inline_keyboard(tg: FakeTelegram, channel: TelegramChannel) -> None:
    # APR-2: Approve / Reject / Edit with the opaque tokens as callback_data
    prompt = ApprovalPrompt("Send the email?", "apv:r1:a", "apv:r1:r", "apv:r1:e")
    payloads = channel.render(Outbound("Draft ready.", approval=prompt))
    results = [await channel.send(DANA, p) for p in payloads]
    assert all(r.ok for r in results)
    markup = tg.sent_messages[-1]["reply_markup"]
    assert [b["callback_data"] for b in markup["inline_keyboard"][0]] == ["apv:r1:a", "apv:r1:r", "apv:r1:e"]
    assert [b["text"] for b in markup["inline_keyboard"][0]] == ["✅ Approve", "❌ Reject", "✏️ Edit"]

    approval_id = results[-1].provider_message_id
    assert approval_id is not None
    edited = await channel.edit_approval(DANA, approval_id, "Send the email?\n\n✅ Approved")
    assert edited.ok
    stored = tg.messages[(5551234, int(approval_id))]
    assert stored["text"].endswith("✅ Approved") and "reply_markup" not in stored  # buttons gone
    again = await channel.edit_approval(DANA, approval_id, "Send the email?\n\n✅ Approved")
    assert again.ok  # "message is not modified" counts as done
    missing = await channel.edit_approval(DANA, "999999", "x")
    assert (missing.ok, missing.retryable, missing.error_code) == (False, False, "bad_request")


async def test_acknowledge_action_answers_the_callback(tg: FakeTelegram, channel: TelegramChannel) -> None:
    [action] = channel.parse(raw(callback_query("apv:r1:a", update_id=1)))
    assert isinstance(action, InboundAction)
    await channel.acknowledge_action(action, TapAnswer("Approved " + "x" * 300))
    [answer] = tg.callback_answers
    assert answer["callback_query_id"] == action.action_id and len(answer["text"]) == 200
    tg.server_error_next("answerCallbackQuery")
    await channel.acknowledge_action(action, TapAnswer())  # never raises


async def test_send_failures_are_classified(tg: FakeTelegram, channel: TelegramChannel) -> None:
    payload = channel.render(Outbound("hello"))[0]
    tg.rate_limit_next("sendMessage", retry_after=7)
    r = await channel.send(DANA, payload)
    assert (r.ok, r.retryable, r.retry_after, r.error_code) == (False, True, 7.0, "rate_limited")
    tg.block_next("sendMessage")
    r = await channel.send(DANA, payload)
    assert (r.retryable, r.error_code) == (False, "blocked") and "blocked by the user" in (r.error or "")
    tg.server_error_next("sendMessage")
    r = await channel.send(DANA, payload)
    assert (r.retryable, r.error_code) == (True, "server_error")
    tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
    r = await channel.send(DANA, payload)
    assert (r.retryable, r.error_code) == (False, "bad_request")
    r = await channel.send(DANA, {"text": "x" * 5000})  # the fake enforces Telegram's limit
    assert (r.retryable, r.error_code) == (False, "bad_request")


async def test_unknown_token_is_unauthorized(tg: FakeTelegram) -> None:
    async with TelegramChannel({}, {"bot_token": "42:wrong"}, api_url=tg.url) as bad:
        r = await bad.send(DANA, {"text": "hi"})
    assert (r.ok, r.retryable, r.error_code) == (False, False, "unauthorized")


async def test_timeouts_are_retryable(tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tgmod, "READ_TIMEOUT_S", 0.2)
    tg.latency_s = 0.6
    async with make(tg.url) as slow:
        r = await slow.send(DANA, {"text": "hi"})
    assert (r.ok, r.retryable, r.error_code) == (False, True, "network")


async def test_concurrent_sends_share_one_pool(tg: FakeTelegram, channel: TelegramChannel) -> None:
    tg.latency_s = 0.05
    results = await asyncio.gather(*(channel.send(DANA, {"text": f"m{n}"}) for n in range(20)))
    assert all(r.ok for r in results)
    assert len({r.provider_message_id for r in results}) == 20


@contextlib.asynccontextmanager
async def dropping_proxy(target: str, drops: int) -> AsyncIterator[str]:
    """A TCP proxy to ``target`` that reads the first ``drops`` requests and closes the connection
    without answering, like a server that closed a keep-alive connection; later ones pass through."""
    host, port = target.removeprefix("http://").split(":")
    left = [drops]

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if left[0] > 0:
            left[0] -= 1
            await reader.read(65536)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_connection_errors_are_retried_once(tg: FakeTelegram) -> None:
    # DESIGN §11: a send on a stale keep-alive connection must not be silently lost
    async with dropping_proxy(tg.url, drops=1) as url:
        once = AiohttpRequest()
        bot = Bot(FAKE_TOKEN, base_url=f"{url}/bot", request=once)
        assert (await bot.send_message(5551234, "hi")).text == "hi"
        assert len(tg.calls_to("sendMessage")) == 1
        await once.shutdown()

    async with dropping_proxy(tg.url, drops=2) as url:
        twice = AiohttpRequest()
        bot = Bot(FAKE_TOKEN, base_url=f"{url}/bot", request=twice)
        try:
            await bot.send_message(5551234, "hi")
        except Exception as exc:
            r = tgmod.classify(exc)  # type: ignore[arg-type]
            assert (r.retryable, r.error_code) == (True, "network")
        else:
            pytest.fail("two connection failures in a row should surface")
        finally:
            await twice.shutdown()
    assert len(tg.calls_to("sendMessage")) == 1  # the dropped requests never reached the Bot API


async def test_get_updates_long_polling(tg: FakeTelegram, channel: TelegramChannel) -> None:
    tg.queue_update(private_message("/start bnd_x1", update_id=100))
    tg.queue_update(callback_query("apv:r9:a", update_id=101))
    updates = await channel.get_updates(offset=None, timeout=0)
    items = [item for u in updates for item in channel.parse_update(u)]
    assert [type(i).__name__ for i in items] == ["InboundMessage", "InboundAction"]
    assert items[0].dedupe_key == "update:100" and getattr(items[0], "start_payload", None) == "bnd_x1"
    assert tg.calls_to("getUpdates")[0]["allowed_updates"] == ["message", "callback_query"]

    offset = updates[-1]["update_id"] + 1
    assert await channel.get_updates(offset=offset, timeout=0) == []  # confirmed ones are gone

    async def later() -> None:
        await asyncio.sleep(0.2)
        tg.queue_update(private_message("late", update_id=102))

    task = asyncio.create_task(later())
    updates = await channel.get_updates(offset=offset, timeout=5)  # the long poll wakes up
    await task
    assert [u["update_id"] for u in updates] == [102]


async def test_get_updates_conflicts_with_a_webhook(tg: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.set_webhook("https://ingram.example.com/hook", SECRET)
    with pytest.raises(Conflict):
        await channel.get_updates(timeout=0)


async def test_fake_speaks_json_bodies_too(tg: FakeTelegram) -> None:
    async with httpx.AsyncClient() as http:
        ok = await http.post(f"{tg.url}/bot{FAKE_TOKEN}/sendMessage",
                             json={"chat_id": 5551234, "text": "hi",
                                   "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}})
        bad = await http.post(f"{tg.url}/bot1:nope/getMe")
    assert ok.json()["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert bad.status_code == 401
    assert bad.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


# -- pure helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "possible"), [
    ("https://ingram.example.com/v1/telegram/webhook/t", True),
    ("https://ingram.example.com:8443/hook", True),
    ("https://ingram.example.com:88/hook", True),
    ("https://ingram.example.com:80/hook", True),
    ("https://ingram.example.com:8000/hook", False),
    ("http://ingram.example.com/hook", False),
    ("https://localhost/hook", False),
    ("https://app.localhost/hook", False),
    ("https://printer.local/hook", False),
    ("https://intranet/hook", False),
    ("https://127.0.0.1/hook", False),
    ("https://10.0.0.5/hook", False),
    ("https://192.168.1.20:8443/hook", False),
    ("https://[::1]/hook", False),
    ("https://8.8.8.8/hook", True),
    ("https://ingram.example.com:99999/hook", False),
    ("not a url", False),
])
def test_webhook_possible(url: str, possible: bool) -> None:
    assert webhook_possible(url) is possible


def test_deep_link() -> None:
    # TG-2
    assert deep_link("ingram_test_bot", "bnd_4f9a2c") == "https://t.me/ingram_test_bot?start=bnd_4f9a2c"
    assert deep_link("@ingram_test_bot", "A" * 64).endswith("=" + "A" * 64)
    for bad in ("", "A" * 65, "has space", "emoji🙂", "a/b"):
        with pytest.raises(ValueError):
            deep_link("ingram_test_bot", bad)
