"""Every registered channel through the same checks (DESIGN §10).

Each kind brings a ``Kit`` (how to build it, sign a request, run its fake server) as ``CONTRACT`` in
``tests/fakes/<kind>_kit.py``, beside its fake. Fixture naming:
files in ``tests/fixtures/<kind>/in`` named ``echo_*`` (our own or another bot's messages) or
``ignored_*`` must parse to []; every other fixture must give at least one item. Golden renders
live in ``out/<case>.json``; ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from channels import REGISTRY, get_channel_class
from channels.base import Channel
from channels.errors import MalformedPayload
from channels.payloads import parse_json
from channels.types import (
    ApprovalPrompt,
    Capabilities,
    InboundAction,
    InboundMessage,
    Outbound,
    ProviderEvent,
    SendResult,
)
from tests.fakes.kits import Kit, contract_kit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FAILURES = ("rate_limited", "blocked", "server_error")


# Each registered kind's kit, from tests/fakes/<kind>_kit.py (the registry is the only list).
KITS: dict[str, Kit] = {kind: contract_kit(kind) for kind in sorted(REGISTRY)}


# -- shared render cases ---------------------------------------------------------------------------

CASES: dict[str, Outbound] = {
    "plain": Outbound("Your briefing is ready."),
    "chips": Outbound("Book the 10:00 slot?", ["Yes, book it", "Not now"]),  # CHIP-2/3/4
    "chips_too_many": Outbound("Pick a day", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    "chip_label_too_long": Outbound("Which one?", ["Yes", "Absolutely, book it right now please"]),
    "approval": Outbound("I drafted the email.", approval=ApprovalPrompt(  # APR-2/3
        "Send the email to ops@example.com?", "apv:run_01:approve", "apv:run_01:reject", "apv:run_01:edit")),
    "approval_only": Outbound("", approval=ApprovalPrompt(
        "Delete 3 calendar events?", "apv:run_02:approve", "apv:run_02:reject")),
    "chips_and_approval": Outbound("Ready to send.", ["Looks good", "Change it"], approval=ApprovalPrompt(
        "Send it now?", "apv:run_03:approve", "apv:run_03:reject", "apv:run_03:edit")),
    "thread": Outbound("Replying in the topic.", thread="77"),
}

KINDS = sorted(REGISTRY)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def kit(kind: str) -> Kit:
    return KITS[kind]


@pytest.fixture
async def channel(kit: Kit) -> AsyncIterator[Channel]:
    # Nothing listens here: the offline checks must not need the network.
    async with kit.make("http://127.0.0.1:9") as ch:
        yield ch


def test_every_registered_channel_has_a_kit() -> None:
    assert set(KITS) == set(REGISTRY) and all(isinstance(kit, Kit) for kit in KITS.values())


def test_class_shape(kind: str) -> None:
    cls = get_channel_class(kind)
    assert issubclass(cls, Channel) and cls.kind == kind
    assert cls.display_name
    caps = cls.capabilities
    assert isinstance(caps, Capabilities)
    assert caps.max_text > 0 and caps.max_chips >= 0 and caps.max_chip_label > 0
    assert issubclass(cls.Config, BaseModel) and issubclass(cls.Secrets, BaseModel)
    assert all(isinstance(v, str) and v for v in cls.generated_secrets().values())


def test_unknown_kind_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown channel kind"):
        get_channel_class("carrier-pigeon")


def _fixtures(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind / "in").glob("*"))


def test_fixtures_exist(kind: str) -> None:
    names = [p.name for p in _fixtures(kind)]
    assert any(n.startswith("echo_") for n in names), "an own/bot echo fixture is required"
    assert any(not n.startswith(("echo_", "ignored_")) for n in names)


def test_fixtures_verify_and_parse(kind: str, kit: Kit, channel: Channel) -> None:
    for path in _fixtures(kind):
        raw = kit.sign(path.read_bytes())
        if path.name.startswith("challenge_"):  # a handshake: answered at verification, never parsed
            assert channel.verify(raw).kind == "challenge", path.name
            continue
        assert channel.verify(raw).kind == "accept", path.name
        items = channel.parse(raw)
        if path.name.startswith(("echo_", "ignored_")):
            assert items == [], path.name  # own echoes and ignored events give nothing
            continue
        assert items, path.name
        for item in items:
            if isinstance(item, ProviderEvent):  # an uninstall and the like: about an installation
                assert item.dedupe_key and item.installation and item.type, path.name
                continue
            assert isinstance(item, InboundMessage | InboundAction)
            assert item.dedupe_key and item.address
            assert item.sender_id.startswith(f"{kind}:"), item.sender_id  # ID-2
            assert item.sender_id != f"{kind}:{item.sender_display}"


def test_tampered_or_missing_secret_is_rejected(kind: str, kit: Kit, channel: Channel) -> None:
    raw = kit.sign(_fixtures(kind)[0].read_bytes())
    assert channel.verify(raw).kind == "accept"
    for bad in kit.tampered(raw):
        verdict = channel.verify(bad)
        assert verdict.kind == "reject" and verdict.reason, bad.headers


def test_malformed_body_raises(kit: Kit, channel: Channel) -> None:
    for body in kit.malformed:
        with pytest.raises(MalformedPayload):
            channel.parse(kit.sign(body))


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(kind: str, channel: Channel, case: str) -> None:
    payloads = channel.render(CASES[case])
    assert payloads == channel.render(CASES[case])  # pure
    assert json.loads(json.dumps(payloads)) == payloads  # storable as JSON in the outbox
    golden = FIXTURES / kind / "out" / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(payloads, indent=2, ensure_ascii=False) + "\n")
    assert golden.exists(), f"missing {golden}; run with UPDATE_GOLDEN=1 and review the diff"
    assert payloads == json.loads(golden.read_text())


def test_long_text_splits_without_loss(kit: Kit, channel: Channel) -> None:
    limit = channel.capabilities.max_text
    words = [f"w{n}🙂" for n in range(limit)]  # wider than the limit in any counting
    text = " ".join(words)
    payloads = channel.render(Outbound(text, ["Yes", "No"]))
    assert len(payloads) > 1
    texts = [kit.text_of(p) for p in payloads]
    assert all(0 < channel.measure(t) <= limit for t in texts)
    assert " ".join(texts).split()[: len(words)] == words  # nothing silently dropped
    assert "Yes" in json.dumps(payloads[-1], ensure_ascii=False)  # chips ride on the last piece


def test_an_unbreakable_word_is_hard_split(kit: Kit, channel: Channel) -> None:
    limit = channel.capabilities.max_text
    text = "x" * (limit * 2 + 5)
    texts = [kit.text_of(p) for p in channel.render(Outbound(text))]
    assert "".join(texts) == text and all(channel.measure(t) <= limit for t in texts)


def test_chips_beyond_limits_degrade_to_a_text_list(kit: Kit, channel: Channel) -> None:
    caps = channel.capabilities
    too_many = [f"Option {n}" for n in range(caps.max_chips + 1)]
    too_long = ["Yes", "y" * (caps.max_chip_label + 1)]
    for chips in (too_many, too_long):
        payloads = channel.render(Outbound("Choose one", chips))
        text = kit.text_of(payloads[-1])
        assert channel.chips_as_text(chips) in text
        for label in chips:
            assert label in text
    within = channel.render(Outbound("Choose one", ["Yes", "No"]))
    if caps.max_chips >= 2:  # native chips: not repeated as text
        assert "1. Yes" not in kit.text_of(within[-1])


def test_approval_is_the_last_payload(kit: Kit, channel: Channel) -> None:
    out = CASES["approval"]
    payloads = channel.render(out)
    assert out.approval is not None
    assert out.approval.text in kit.text_of(payloads[-1])
    assert out.text in kit.text_of(payloads[0])
    if not channel.capabilities.native_approvals:
        assert "Reply YES to approve or NO to reject." in kit.text_of(payloads[-1])


async def test_send_classifies_failures(kit: Kit) -> None:
    async with kit.fake() as fake, kit.make(fake.url) as ch:
        payload = ch.render(Outbound("hello"))[0]
        ok = await ch.send(kit.address, payload)
        assert ok.ok and ok.provider_message_id
        expected = {"rate_limited": (True, "rate_limited"), "blocked": (False, "blocked"),
                    "server_error": (True, "server_error")}
        for failure in FAILURES:
            fake.inject(failure)
            result = await ch.send(kit.address, payload)
            retryable, code = expected[failure]
            assert (result.ok, result.retryable, result.error_code) == (False, retryable, code), result
            assert result.error
            if failure == "rate_limited":
                assert result.retry_after and result.retry_after > 0
        assert (await ch.send(kit.address, payload)).ok  # failures were one-shot


async def test_send_to_an_unreachable_provider_is_retryable(kit: Kit) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with kit.make(f"http://127.0.0.1:{port}") as ch:
        result = await ch.send(kit.address, ch.render(Outbound("hello"))[0])
    assert isinstance(result, SendResult)
    assert (result.ok, result.retryable, result.error_code) == (False, True, "network")


def test_inbound_values_are_frozen() -> None:
    item = InboundMessage("k", "a", None, "telegram:1", "D", "t", None, True, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError inside json.loads
    b'{"text": "lone \\ud800 surrogate"}',
    b'{"text": "lone \xed\xa0\x80 surrogate as raw bytes"}',  # json.loads alone would let it through
    b'{"text": "\xed\xbf\xbf"}',
    b'{"text": "a \\u0000 in it"}',
    b'{"a\\u0000": 1}',
    b"{not json", b"\xff\xfe",
])
def test_provider_json_that_cannot_be_stored_as_text_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_json(body)


def test_provider_json_in_utf8_with_a_bom_or_raw_emoji_parses() -> None:
    assert parse_json("\ufeff{\"text\": \"hi \U0001f600\"}".encode()) == {"text": "hi \U0001f600"}


def test_provider_json_with_escaped_emoji_and_backslashes_parses() -> None:
    assert parse_json(b'{"text": "hi \\ud83d\\ude00 and \\\\u0000 typed literally"}') == {
        "text": "hi \U0001f600 and \\u0000 typed literally"}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_kind_names_the_setting_of_its_provider_url(kind: str) -> None:
    """The hub builds every channel through one function (``channel_hub.channel_from``): the provider's
    base URL comes from the ``Settings`` field the channel names, so a new kind edits no table elsewhere."""
    from app.settings import Settings

    cls = get_channel_class(kind)
    assert cls.api_url_setting in {field.name for field in dataclasses.fields(Settings)}
    assert cls.api_url_setting.endswith("_api_url")
