"""The WhatsApp channel on its own: Meta's signature and handshake, what it parses (batches, taps, connect
codes), what it renders within Meta's limits, and Graph's answers against the fake Graph API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from channels.errors import SetupError
from channels.types import ApprovalPrompt, InboundAction, InboundMessage, Outbound, ProviderEvent, RawRequest, TapAnswer
from channels.whatsapp import MAX_BUTTON_BODY, MAX_TEXT, WhatsAppChannel
from channels.whatsapp_inbound import connect_code
from tests.channels.test_contract import CASES
from tests.fakes import whatsapp as fake_wa
from tests.fakes.whatsapp import FakeGraph, run_fake_graph

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp" / "in"
VERIFY_TOKEN = "wa-verify_0123456789abcdef"
CODE = "Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s"  # 32 characters, as app.services.deployments mints them
PUBLIC = {"display_phone_number": fake_wa.DISPLAY_PHONE_NUMBER}


def make(api_url: str = "http://127.0.0.1:9", **secrets: str) -> WhatsAppChannel:
    return WhatsAppChannel(
        {"phone_number_id": fake_wa.PHONE_NUMBER_ID, "display_phone_number": fake_wa.DISPLAY_PHONE_NUMBER},
        {"access_token": fake_wa.ACCESS_TOKEN, "app_secret": fake_wa.APP_SECRET, "verify_token": VERIFY_TOKEN,
         **secrets}, api_url=api_url)


def post(payload: dict[str, Any] | bytes, secret: str = fake_wa.APP_SECRET) -> RawRequest:
    body = payload if isinstance(payload, bytes) else fake_wa.body(payload)
    return RawRequest("POST", "/v1/whatsapp/webhook/default", fake_wa.sign(body, secret), {}, body)


def handshake(**query: str) -> RawRequest:
    return RawRequest("GET", "/v1/whatsapp/webhook/default", {}, query, b"")


def fixture(name: str) -> RawRequest:
    return post((FIXTURES / name).read_bytes())


def test_the_reference_test_vector_verifies() -> None:  # reference/whatsapp.md
    channel = make(app_secret="appsecret")
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    header = {"X-Hub-Signature-256": "sha256=09eceea024af6e6343b760cc9bd3ae7c056938dd636e24e92109eb8219500384"}
    assert channel.verify(RawRequest("POST", "/", header, {}, body)).kind == "accept"
    assert channel.parse(RawRequest("POST", "/", header, {}, body)) == []
    # The same bytes re-serialised (a space after the colon) no longer match: the raw body is what is signed.
    respaced = body.replace(b'":"', b'": "')
    assert channel.verify(RawRequest("POST", "/", header, {}, respaced)).kind == "reject"


def test_the_handshake_answers_the_challenge_only_for_the_verify_token() -> None:  # WA-1
    channel = make()
    verdict = channel.verify(handshake(**{"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                          "hub.verify_token": VERIFY_TOKEN}))
    assert (verdict.kind, verdict.body, verdict.content_type) == ("challenge", "1158201444", "text/plain")
    refused = [
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN + "x"},
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},  # no challenge to answer
        {"hub.mode": "subscribe", "hub.challenge": "x" * 257, "hub.verify_token": VERIFY_TOKEN},
        {},
    ]
    for query in refused:
        assert channel.verify(handshake(**query)).kind == "reject", query
    unset = make(verify_token="")  # no token generated: nothing can pass, not even an empty one
    assert unset.verify(handshake(**{"hub.mode": "subscribe", "hub.challenge": "1",
                                     "hub.verify_token": ""})).kind == "reject"


def test_a_batch_gives_every_message_and_status_in_order() -> None:  # WA issue §2: several entries per POST
    items = make().parse(fixture("batch_entries_messages_and_statuses.json"))
    first, second, status = items
    assert isinstance(first, InboundMessage) and isinstance(second, InboundMessage)
    assert [(m.address, m.sender_id, m.sender_display, m.text) for m in (first, second)] == [
        (fake_wa.USER_WA_ID, f"whatsapp:{fake_wa.USER_WA_ID}", "Dana Vex", "First question"),
        (fake_wa.OTHER_WA_ID, f"whatsapp:{fake_wa.OTHER_WA_ID}", "Sam Roe", "Hello from Sam")]
    assert first.dedupe_key == first.provider_message_id and first.dedupe_key.startswith("wamid.")
    assert first.is_direct and first.thread is None and first.start_payload is None
    assert isinstance(status, ProviderEvent) and status.type == "delivery_status"
    assert status.installation == fake_wa.PHONE_NUMBER_ID and status.data["status"] == "delivered"
    failed = make().parse(fixture("status_failed_re_engagement.json"))[0]
    assert isinstance(failed, ProviderEvent) and failed.dedupe_key.endswith(":failed")
    assert failed.data["status"] == "failed" and failed.data["at"] == datetime(2026, 1, 2, tzinfo=UTC)
    assert failed.data["error"].startswith("whatsapp_window_closed: graph 131047 Re-engagement message: ")
    assert "24 hours have passed" in failed.data["error"]


@pytest.mark.parametrize(("name", "what"), [
    ("unreadable_sticker.json", "stickers"), ("unreadable_voice.json", "voice or audio messages"),
    ("unreadable_location.json", "locations"), ("unreadable_unsupported_type.json", "this kind of message")])
def test_what_cannot_be_read_is_named_and_never_given_as_text(name: str, what: str) -> None:  # issue 16 "Bad input"
    [item] = make().parse(fixture(name))
    assert isinstance(item, InboundMessage) and item.unreadable == what and item.text == ""
    assert item.sender_id == f"whatsapp:{fake_wa.USER_WA_ID}" and item.provider_message_id
    assert what in make().unreadable_reply(what) and "text messages" in make().unreadable_reply(what)


def test_an_images_caption_is_read_and_the_image_is_said_to_be_unseen() -> None:  # issue 16 §8
    [item] = make().parse(fixture("image_with_caption.json"))
    assert isinstance(item, InboundMessage) and item.unreadable is None
    assert item.text.startswith("[an image attached, which I cannot see] ") and len(item.text) > 40


def test_a_sender_without_a_profile_name_is_shown_by_number_not_named_by_it() -> None:  # ID-2
    payload = fake_wa.text_message("hi")
    del payload["entry"][0]["changes"][0]["value"]["contacts"]
    [item] = make().parse(post(payload))
    assert isinstance(item, InboundMessage)
    assert (item.sender_id, item.sender_display) == (f"whatsapp:{fake_wa.USER_WA_ID}", f"+{fake_wa.USER_WA_ID}")


def test_the_links_greeting_carries_a_code_the_parser_finds() -> None:  # WA-2
    link = WhatsAppChannel.start_link(PUBLIC, CODE)
    assert link is not None and link.startswith(f"https://wa.me/{fake_wa.BUSINESS_NUMBER}?text=")
    [text] = parse_qs(urlsplit(link).query)["text"]
    assert text == f"Hi! My connect code is {CODE}"
    [item] = make().parse(post(fake_wa.text_message(text)))
    assert isinstance(item, InboundMessage) and item.start_payload == CODE
    assert WhatsAppChannel.start_link({}, CODE) is None  # not set up: no number to link to
    with pytest.raises(ValueError):
        WhatsAppChannel.start_link(PUBLIC, "short")


@pytest.mark.parametrize(("text", "found"), [
    (f"hello there, connect code: {CODE}. Thanks!", CODE),  # the person edited the greeting
    (f"  {CODE}\n", CODE),  # only the code
    (f"Hi! My CONNECT CODE is {CODE}", CODE),
    (f"my code is {CODE}", None),  # neither the marker nor the code alone: an ordinary message
    ("see https://example.com/Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s/page", None),
    ("connect code is https://example.com/Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s", None),  # inside a URL
    ("Antidisestablishmentarianism", None),  # a long word alone is a word
    ("what is my connect code?", None),
    (f'connect code "{CODE}"', CODE),
])
def test_connect_codes_are_found_only_where_they_are_meant(text: str, found: str | None) -> None:
    assert connect_code(text) == found


def test_chip_taps_read_as_typed_labels_and_approval_taps_are_actions() -> None:  # CHIP-3, APR-3
    channel = make()
    [chip] = channel.parse(fixture("button_reply_chip.json"))
    [picked] = channel.parse(fixture("list_reply.json"))
    [template] = channel.parse(fixture("template_quick_reply_button.json"))
    assert [(type(i), getattr(i, "text", None)) for i in (chip, picked, template)] == [
        (InboundMessage, "Yes, book it"), (InboundMessage, "Thursday"), (InboundMessage, "Remind me tomorrow")]
    [tap] = channel.parse(fixture("button_reply_approve.json"))
    assert isinstance(tap, InboundAction) and tap.token == "a:cb_5Jk2LmN8pQ4rS7tV"
    assert tap.provider_message_id == "wamid.HBgLMzA2OTEyMzQ1Njc4FQIAERgSQVBQUk9NUFQ="  # the prompt tapped
    assert tap.action_id == tap.dedupe_key  # the tap's own message, quoted by a refusal


def test_a_webhook_for_another_number_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="channels.whatsapp"):
        assert make().parse(fixture("ignored_unknown_phone_number_id.json")) == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "987654321098765" in caplog.records[0].getMessage()


def test_chips_within_limits_are_buttons_and_beyond_them_a_numbered_list() -> None:  # CHIP-3
    channel = make()
    [buttons] = channel.render(Outbound("When?", ["Today", "Tomorrow", "x" * 20]))
    action = buttons["interactive"]["action"]["buttons"]
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in action] == [
        ("chip:0", "Today"), ("chip:1", "Tomorrow"), ("chip:2", "x" * 20)]
    for chips in (["A", "B", "C", "D"], ["Yes", "y" * 21], ["Same", "Same"]):
        [listed] = channel.render(Outbound("When?", chips))
        assert listed["type"] == "text" and "1. " in listed["text"]["body"], chips


def test_long_bodies_keep_their_last_part_with_the_buttons() -> None:
    channel = make()
    text = " ".join(f"word{n}" for n in range(1500))  # ~10k characters
    payloads = channel.render(Outbound(text, ["Yes", "No"]))
    *texts, last = payloads
    assert last["type"] == "interactive" and all(p["type"] == "text" for p in texts)
    assert channel.measure(last["interactive"]["body"]["text"]) <= MAX_BUTTON_BODY
    assert all(channel.measure(p["text"]["body"]) <= MAX_TEXT for p in texts)
    shown = [p["text"]["body"] for p in texts] + [last["interactive"]["body"]["text"]]
    assert " ".join(shown).split() == text.split()  # nothing lost
    prompt = ApprovalPrompt("Approve memory_write?\n" + "z " * 900, "a:tok", "r:tok", "e:tok")
    *before, buttons = channel.render(Outbound("", approval=prompt))
    assert before and channel.measure(buttons["interactive"]["body"]["text"]) <= MAX_BUTTON_BODY
    assert [b["reply"]["id"] for b in buttons["interactive"]["action"]["buttons"]] == ["a:tok", "r:tok", "e:tok"]


def test_an_approval_whose_tokens_do_not_fit_falls_back_to_text() -> None:
    too_long = ApprovalPrompt("Delete it?", "a:" + "t" * 300, "r:t")
    [payload] = make().render(Outbound("", approval=too_long))
    assert payload["type"] == "text" and "Reply YES to approve" in payload["text"]["body"]


def test_address_checks() -> None:
    assert WhatsAppChannel.address_problem("306912345678") is None
    assert WhatsAppChannel.address_problem("+30 691 234 5678") and WhatsAppChannel.address_problem("0123456")
    assert WhatsAppChannel.owner_of_address("306912345678") == "whatsapp:306912345678"


# -- against the fake Graph API ------------------------------------------------------------------------

@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with run_fake_graph() as fake:
        yield fake


async def test_every_rendered_case_is_accepted_by_graph(graph: FakeGraph) -> None:
    async with make(graph.url) as channel:
        for name, outbound in CASES.items():
            for payload in channel.render(outbound):
                result = await channel.send(fake_wa.USER_WA_ID, payload)
                assert result.ok and result.provider_message_id, (name, result)
    first = graph.sent[0]
    assert (first["messaging_product"], first["recipient_type"], first["to"]) == (
        "whatsapp", "individual", fake_wa.USER_WA_ID)


async def test_graph_errors_say_code_title_and_details(graph: FakeGraph) -> None:  # WA-4
    async with make(graph.url) as channel:
        payload = channel.render(Outbound("hello"))[0]
        graph.window_closed_next()
        closed = await channel.send(fake_wa.USER_WA_ID, payload)
        assert (closed.ok, closed.retryable, closed.error_code) == (False, False, "whatsapp_window_closed")
        assert closed.error and "131047" in closed.error and "Re-engagement message" in closed.error
        assert "24 hours" in closed.error
        graph.rate_limit_next(retry_after=7)
        assert (await channel.send(fake_wa.USER_WA_ID, payload)).retry_after == 7
        graph.fail_next(131056, "(Business Account, Consumer Account) pair rate limit hit")
        paired = await channel.send(fake_wa.USER_WA_ID, payload)
        assert (paired.error_code, paired.retryable, paired.retry_after) == ("rate_limited", True, 6.0)
        graph.expire_token()
        expired = await channel.send(fake_wa.USER_WA_ID, payload)
        assert (expired.error_code, expired.retryable) == ("unauthorized", False)
        assert expired.error and "190" in expired.error and fake_wa.ACCESS_TOKEN not in expired.error


async def test_setup_reads_the_number_and_says_what_to_paste_in_meta(graph: FakeGraph) -> None:  # WA-1
    url = "https://bots.example.com/v1/whatsapp/webhook/default"
    async with make(graph.url) as channel:
        info = await channel.setup(webhook_url=url)
    assert info.mode == "webhook" and info.webhook_url == url
    assert info.details == {"display_phone_number": fake_wa.DISPLAY_PHONE_NUMBER,
                            "verified_name": fake_wa.VERIFIED_NAME, "quality_rating": "GREEN",
                            "verify_token": VERIFY_TOKEN}
    steps = "\n".join(info.steps)
    assert url in steps and VERIFY_TOKEN in steps and "subscribe to messages" in steps
    assert fake_wa.ACCESS_TOKEN not in json.dumps(info.details) + steps
    method, path, params = graph.calls[-1]
    assert (method, path) == ("GET", f"/{fake_wa.GRAPH_VERSION}/{fake_wa.PHONE_NUMBER_ID}")
    assert params["fields"] == "display_phone_number,verified_name,quality_rating"
    async with make(graph.url) as channel:
        local = await channel.setup(webhook_url="http://localhost:8000/v1/whatsapp/webhook/default")
    assert "public HTTPS" in local.steps[0]


@pytest.mark.parametrize(("token", "number_id", "code"), [
    ("EAAGnotTheRightToken0000000000", fake_wa.PHONE_NUMBER_ID, "invalid_token"),
    (fake_wa.ACCESS_TOKEN, "999999999999", "unknown_phone_number"),
])
async def test_setup_blames_the_field_at_fault(graph: FakeGraph, token: str, number_id: str, code: str) -> None:
    channel = WhatsAppChannel({"phone_number_id": number_id},
                              {"access_token": token, "app_secret": fake_wa.APP_SECRET, "verify_token": "v"},
                              api_url=graph.url)
    async with channel:
        with pytest.raises(SetupError) as raised:
            await channel.setup(webhook_url="https://bots.example.com/x")
    assert raised.value.code == code and code in WhatsAppChannel.field_errors


async def test_setup_without_graph_is_unreachable_not_a_crash() -> None:
    async with make("http://127.0.0.1:9") as channel:
        with pytest.raises(SetupError) as raised:
            await channel.setup(webhook_url="https://bots.example.com/x")
    assert raised.value.code == "provider_unreachable"


async def test_outcomes_and_refusals_are_replies_quoting_the_message(graph: FakeGraph) -> None:  # APR-3
    tap = InboundAction("wamid.TAP", fake_wa.OTHER_WA_ID, None, f"whatsapp:{fake_wa.OTHER_WA_ID}", "Sam Roe",
                        "a:tok", "wamid.PROMPT", "wamid.TAP")
    async with make(graph.url) as channel:
        edited = await channel.edit_approval(fake_wa.USER_WA_ID, "wamid.PROMPT", "✅ Approved")
        await channel.acknowledge_action(tap, TapAnswer("Only the owner can decide.", refused=True))
        await channel.acknowledge_action(tap, TapAnswer("✅ Approved"))  # shown by the outcome: nothing sent
    assert edited.ok
    outcome, refusal = graph.sent
    assert outcome["text"]["body"] == "✅ Approved" and outcome["context"] == {"message_id": "wamid.PROMPT"}
    assert (refusal["to"], refusal["text"]["body"], refusal["context"]) == (
        fake_wa.OTHER_WA_ID, "Only the owner can decide.", {"message_id": "wamid.TAP"})


async def test_a_batch_marks_each_persons_newest_message_read_once(graph: FakeGraph) -> None:  # issue 16 §5
    first, second = fake_wa.text_message("one"), fake_wa.text_message("two")
    other = fake_wa.text_message("hi", wa_id=fake_wa.OTHER_WA_ID, name=fake_wa.OTHER_NAME)
    async with make(graph.url) as channel:
        channel.learn(channel.parse(post(fake_wa.batch(first, second, other))))
        await asyncio.gather(*channel._marking)
    wamid = [m["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for m in (second, other)]
    assert sorted(graph.read_marks) == sorted(wamid)  # WhatsApp shows Dana's earlier message read too
