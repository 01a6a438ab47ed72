"""LinkedIn Page messaging (issue 18, LI-1..LI-3): LinkedIn's documented webhook mechanics against its test
vectors, the ASSUMED message transport against the fake (tests/fakes/linkedin.py), the approval gate, and the
admin's consent (3-legged OAuth)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from channels.base import APPROVAL_TEXT_PROMPT
from channels.errors import MalformedPayload, SetupError
from channels.linkedin import API_VERSION, DISABLED_CODE, LinkedInChannel
from channels.linkedin_inbound import challenge_response, signature
from channels.types import ApprovalPrompt, InboundMessage, Outbound, RawRequest
from tests.fakes import linkedin as fake_li
from tests.fakes.linkedin import FakeLinkedIn, run_fake_linkedin

# The reference's test vectors (shared/reference/linkedin.md, "Webhooks").
VECTOR_SECRET = "clientsecret"
VECTOR_CHALLENGE = "3b6e1d6e-1c52-4d2c-9a55-1b1a0b6f2f10"
VECTOR_CHALLENGE_RESPONSE = "8a04392848476433a0b6de606ba8fc8b7f522293261bb44c127825f93fff3668"
VECTOR_EMPTY_BODY_SIGNATURE = "5942550561e29da2defa5bfedcc4f99eb8c878e59f80b593abc418ade5c9c4e2"
PATH = "/v1/linkedin/webhook/default"
REDIRECT = "https://ingram.example/v1/linkedin/oauth/callback"


def channel(url: str = "http://127.0.0.1:9", *, enabled: bool = True, consented: bool = True,
            secret: str = fake_li.CLIENT_SECRET, **config: Any) -> LinkedInChannel:
    return LinkedInChannel(
        {"client_id": fake_li.CLIENT_ID, "page_urn": fake_li.PAGE_URN, "messaging_enabled": enabled,
         "consent_member": fake_li.ADMIN_URN if consented else "", "oauth_url": url, **config},
        {"client_secret": secret, "access_token": fake_li.ACCESS_TOKEN if consented else "",
         "refresh_token": fake_li.REFRESH_TOKEN if consented else ""}, api_url=url)


def post(raw: bytes, headers: dict[str, str] | None = None) -> RawRequest:
    return RawRequest("POST", PATH, headers or {}, {}, raw)


def signed(payload: dict[str, Any]) -> RawRequest:
    raw, headers = fake_li.signed_webhook(payload)
    return post(raw, headers)


@pytest.fixture
async def li() -> AsyncIterator[FakeLinkedIn]:
    async with run_fake_linkedin() as fake:
        yield fake


# -- LinkedIn's documented mechanics: the test vectors ---------------------------------------------

def test_the_reference_test_vectors() -> None:
    assert challenge_response(VECTOR_SECRET, VECTOR_CHALLENGE) == VECTOR_CHALLENGE_RESPONSE
    assert signature(VECTOR_SECRET, b"{}") == VECTOR_EMPTY_BODY_SIGNATURE
    # The fake computes them on its own: the two agree.
    assert fake_li.challenge_response(VECTOR_CHALLENGE, VECTOR_SECRET) == VECTOR_CHALLENGE_RESPONSE
    assert fake_li.sign(b"{}", VECTOR_SECRET) == {"X-LI-Signature": VECTOR_EMPTY_BODY_SIGNATURE}


def test_the_validation_challenge_is_answered_as_json() -> None:
    ch = channel(secret=VECTOR_SECRET)
    verdict = ch.verify(RawRequest("GET", PATH, {}, {"challengeCode": VECTOR_CHALLENGE,
                                                     "applicationId": fake_li.CLIENT_ID}, b""))
    assert verdict.kind == "challenge" and verdict.content_type == "application/json"
    assert json.loads(verdict.body or "") == {"challengeCode": VECTOR_CHALLENGE,
                                              "challengeResponse": VECTOR_CHALLENGE_RESPONSE}


@pytest.mark.parametrize("query", [{}, {"challengeCode": ""}, {"challengeCode": "x" * 129},
                                   {"challengeCode": "not a uuid"}, {"challengeCode": "hmacsha256={}"}])
def test_a_challenge_that_is_not_linkedins_is_refused(query: dict[str, str]) -> None:
    verdict = channel(secret=VECTOR_SECRET).verify(RawRequest("GET", PATH, {}, query, b""))
    assert verdict.kind == "reject" and verdict.reason


def test_the_challenge_is_no_signing_oracle() -> None:
    # The same key signs challenges and bodies: answering "hmacsha256={}" would hand out the body's signature.
    assert challenge_response(VECTOR_SECRET, "hmacsha256={}") == VECTOR_EMPTY_BODY_SIGNATURE
    assert channel(secret=VECTOR_SECRET).verify(
        RawRequest("GET", PATH, {}, {"challengeCode": "hmacsha256={}"}, b"")).kind == "reject"


def test_a_signed_post_is_accepted() -> None:
    ch = channel(secret=VECTOR_SECRET)
    assert ch.verify(post(b"{}", {"X-LI-Signature": VECTOR_EMPTY_BODY_SIGNATURE})).kind == "accept"
    assert ch.verify(post(b"{}", {"x-li-signature": VECTOR_EMPTY_BODY_SIGNATURE.upper()})).kind == "accept"


@pytest.mark.parametrize("raw", [
    post(b"{}"),  # unsigned
    post(b"{}", {"X-LI-Signature": ""}),
    post(b"{}", {"X-LI-Signature": VECTOR_EMPTY_BODY_SIGNATURE[:-1] + "0"}),  # a bad signature
    post(b"{ }", {"X-LI-Signature": VECTOR_EMPTY_BODY_SIGNATURE}),  # an altered body
    post(b"{}", {"X-LI-Signature": f"hmacsha256={VECTOR_EMPTY_BODY_SIGNATURE}"}),
    post(b"{}", fake_li.sign(b"{}", "another-secret")),
    RawRequest("PUT", PATH, {"X-LI-Signature": VECTOR_EMPTY_BODY_SIGNATURE}, {}, b"{}"),
], ids=["unsigned", "empty", "bad", "altered", "prefixed", "other_secret", "put"])
def test_an_unsigned_or_forged_post_is_rejected(raw: RawRequest) -> None:
    verdict = channel(secret=VECTOR_SECRET).verify(raw)
    assert verdict.kind == "reject" and verdict.reason


# -- parse: the ASSUMED Page-message payload --------------------------------------------------------

def test_a_member_message_is_read() -> None:
    [item] = channel().parse(signed(fake_li.page_message("Do you ship to Greece?", message_id="msg_42")))
    assert item == InboundMessage(
        dedupe_key="id:msg_42", address=fake_li.THREAD, thread=None, sender_id=f"linkedin:{fake_li.MEMBER_URN}",
        sender_display=fake_li.MEMBER_NAME, text="Do you ship to Greece?", start_payload=None, is_direct=True,
        provider_message_id="msg_42")


def test_dedupe_keys_without_an_id() -> None:
    payload = fake_li.page_message("hello", name=None, created_at=1767225600123)
    del payload["id"]
    raw, headers = fake_li.signed_webhook(payload)
    [by_delivery] = channel().parse(post(raw, {**headers, "X-LI-Delivery-Id": "dlv-7"}))
    [by_fields] = channel().parse(post(raw, headers))
    assert by_delivery.dedupe_key == "delivery:dlv-7"
    assert by_fields.dedupe_key == f"msg:{fake_li.THREAD}:1767225600123:{fake_li.MEMBER_URN}"
    assert by_fields.provider_message_id is None
    # No name given: a label, never the identity itself (ID-2).
    assert by_fields.sender_display == "LinkedIn member Dn4Vx9aB2c"


@pytest.mark.parametrize("payload", [
    fake_li.page_message("hi", organization=fake_li.OTHER_PAGE_URN),  # another Page's message
    fake_li.page_message("our own reply", sender=fake_li.PAGE_URN),  # the Page itself: an echo
    fake_li.page_message("another Page writing", sender=fake_li.OTHER_PAGE_URN),
    fake_li.page_message("   "),
    {"type": "ORGANIZATION_SOCIAL_ACTION", "organization": fake_li.PAGE_URN},  # not a message
    {"hello": "world"},
], ids=["other_org", "echo", "other_page_sender", "blank", "other_type", "no_type"])
def test_what_is_not_a_members_message_to_this_page_is_ignored(payload: dict[str, Any]) -> None:
    assert channel().parse(signed(payload)) == []


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'{"text": "a \\u0000 in it"}',
    json.dumps({**fake_li.page_message("hi"), "organization": "Acme"}).encode(),
    json.dumps({**fake_li.page_message("hi"), "from": None}).encode(),
    json.dumps({**fake_li.page_message("hi"), "thread": ""}).encode(),
    json.dumps({**fake_li.page_message("hi"), "text": {"body": "hi"}}).encode(),
    json.dumps({**fake_li.page_message("hi"), "createdAt": True}).encode(),
])
def test_a_malformed_message_raises(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        channel().parse(post(body, fake_li.sign(body)))


def test_messaging_problem_names_what_is_missing() -> None:
    assert channel().messaging_problem() is None
    assert "consent" in (channel(consented=False).messaging_problem() or "")
    assert "switched off" in (channel(enabled=False).messaging_problem() or "")
    assert "page_urn" in (channel(page_urn="").messaging_problem() or "")


@pytest.mark.parametrize("state", [{"enabled": False}, {"consented": False}, {"enabled": False, "consented": False}])
def test_nothing_moves_in_while_messaging_is_not_enabled(state: dict[str, bool]) -> None:
    # LI-3: acknowledged (verify accepts), never taken in.
    raw = signed(fake_li.page_message("hello"))
    ch = channel(**state)
    assert ch.verify(raw).kind == "accept"
    assert ch.parse(raw) == []
    with pytest.raises(MalformedPayload):  # a broken body is still a broken body
        ch.parse(post(b"[]", fake_li.sign(b"[]")))


# -- render ------------------------------------------------------------------------------------------

def test_render_lists_chips_and_asks_for_approval_in_words() -> None:
    ch = channel()
    assert ch.capabilities.max_chips == 0 and not ch.capabilities.native_approvals
    [payload] = ch.render(Outbound("Book it?", ["Yes", "Not now"]))
    assert payload == {"text": "Book it?\n\n- Yes\n- Not now"}
    payloads = ch.render(Outbound("Drafted.", approval=ApprovalPrompt("Send it?", "apv:1:a", "apv:1:r")))
    assert payloads[-1]["text"].endswith(APPROVAL_TEXT_PROMPT) and "Reply YES" in payloads[-1]["text"]
    assert ch.render(Outbound("in a topic", thread="77")) == [{"text": "in a topic"}]


# -- send: the ASSUMED messaging resource, against the fake --------------------------------------------

async def test_send_posts_to_the_assumed_resource(li: FakeLinkedIn) -> None:
    async with channel(li.url) as ch:
        result = await ch.send(fake_li.THREAD, {"text": "We do ship to Greece."})
    assert result.ok and result.provider_message_id == li.sent[0]["id"]
    assert li.sent == [{"organization": fake_li.PAGE_URN, "thread": fake_li.THREAD, "text": "We do ship to Greece.",
                        "id": result.provider_message_id, "version": API_VERSION}]


@pytest.mark.parametrize("state", [{"enabled": False}, {"consented": False}])
async def test_send_while_disabled_asks_nobody(li: FakeLinkedIn, state: dict[str, bool]) -> None:
    async with channel(li.url, **state) as ch:
        result = await ch.send(fake_li.THREAD, {"text": "hello"})
    assert (result.ok, result.retryable, result.error_code) == (False, False, DISABLED_CODE)
    assert result.error and li.calls == []


async def test_send_failures_are_classified(li: FakeLinkedIn) -> None:
    async with channel(li.url) as ch:
        li.rate_limit_next(retry_after=3)
        throttled = await ch.send(fake_li.THREAD, {"text": "a"})
        assert (throttled.retryable, throttled.error_code, throttled.retry_after) == (True, "rate_limited", 3.0)
        li.rate_limit_next(retry_after=None)
        assert (await ch.send(fake_li.THREAD, {"text": "a"})).retry_after == 60.0  # no Retry-After: a default
        li.server_error_next()
        failed = await ch.send(fake_li.THREAD, {"text": "a"})
        assert (failed.retryable, failed.error_code) == (True, "server_error")
        li.block_next()
        blocked = await ch.send(fake_li.THREAD, {"text": "a"})
        assert (blocked.retryable, blocked.error_code) == (False, "blocked")
        li.fail_next(426, "NONEXISTENT_VERSION", "Requested version 202401 is not active")
        sunset = await ch.send(fake_li.THREAD, {"text": "a"})
        assert (sunset.retryable, sunset.error_code) == (False, "linkedin_version_sunset")
        too_long = await ch.send(fake_li.THREAD, {"text": "x" * 8001})
        assert (too_long.retryable, too_long.error_code) == (False, "bad_request")
        li.expire_token()
        refused = await ch.send(fake_li.THREAD, {"text": "a"})
        assert (refused.retryable, refused.error_code) == (False, "unauthorized")
        assert "INVALID_ACCESS_TOKEN" in (refused.error or "") and fake_li.ACCESS_TOKEN not in (refused.error or "")


async def test_send_for_a_page_the_token_does_not_administer_is_refused(li: FakeLinkedIn) -> None:
    async with channel(li.url, page_urn=fake_li.OTHER_PAGE_URN) as ch:
        result = await ch.send(fake_li.THREAD, {"text": "a"})
    assert (result.ok, result.retryable, result.error_code) == (False, False, "unauthorized")


async def test_send_to_an_unreachable_linkedin_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with channel(f"http://127.0.0.1:{port}") as ch:
        result = await ch.send(fake_li.THREAD, {"text": "a"})
    assert (result.ok, result.retryable, result.error_code) == (False, True, "network")


# -- the admin's consent (documented OAuth) -------------------------------------------------------------

def test_consent_url() -> None:
    url = LinkedInChannel({"client_id": fake_li.CLIENT_ID, "page_urn": fake_li.PAGE_URN},
                          {"client_secret": fake_li.CLIENT_SECRET}, api_url="https://api.linkedin.com"
                          ).consent_url(REDIRECT, "st-1")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.linkedin.com/oauth/v2/authorization"
    assert parse_qs(parts.query) == {"response_type": ["code"], "client_id": [fake_li.CLIENT_ID],
                                     "redirect_uri": [REDIRECT], "state": ["st-1"], "scope": ["rw_organization_admin"]}


async def _consent(li: FakeLinkedIn, ch: LinkedInChannel, state: str = "st-1") -> dict[str, list[str]]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(ch.consent_url(REDIRECT, state))
    assert answer.status_code == 302 and answer.headers["location"].startswith(REDIRECT)
    return parse_qs(urlsplit(answer.headers["location"]).query)


async def test_the_consent_gives_tokens_that_can_send(li: FakeLinkedIn) -> None:
    async with channel(li.url, consented=False) as ch:
        back = await _consent(li, ch)
        assert back["state"] == ["st-1"]
        tokens = await ch.exchange_code(back["code"][0], REDIRECT)
        with pytest.raises(SetupError) as reused:  # a code is good once
            await ch.exchange_code(back["code"][0], REDIRECT)
    assert reused.value.code == "linkedin_grant_refused"
    assert li.token_calls[0] == {"grant_type": "authorization_code", "code": back["code"][0], "redirect_uri": REDIRECT,
                                 "client_id": fake_li.CLIENT_ID, "client_secret": fake_li.CLIENT_SECRET}
    assert tokens["expires_in"] == fake_li.ACCESS_TTL_S and tokens["refresh_token"]
    expires_at = datetime.fromisoformat(tokens["access_token_expires_at"])
    assert abs(expires_at - datetime.now(UTC) - timedelta(seconds=fake_li.ACCESS_TTL_S)) < timedelta(minutes=1)
    async with LinkedInChannel({"client_id": fake_li.CLIENT_ID, "page_urn": fake_li.PAGE_URN, "messaging_enabled": True,
                                "consent_member": fake_li.ADMIN_URN},
                               {"client_secret": fake_li.CLIENT_SECRET, "access_token": tokens["access_token"]},
                               api_url=li.url) as live:
        assert (await live.send(fake_li.THREAD, {"text": "hello"})).ok


async def test_a_refused_consent_or_exchange(li: FakeLinkedIn) -> None:
    li.deny_consent = True
    async with channel(li.url, consented=False) as ch:
        back = await _consent(li, ch)
        assert back["error"] == ["user_cancelled_authorize"] and "code" not in back
        li.deny_consent = False
        code = (await _consent(li, ch))["code"][0]
        with pytest.raises(SetupError) as other_redirect:
            await ch.exchange_code(code, "https://elsewhere.example/cb")
    assert other_redirect.value.code == "linkedin_grant_refused"
    async with channel(li.url, consented=False, secret="wrong-secret-0123") as wrong:
        with pytest.raises(SetupError) as refused:
            await wrong.exchange_code("AQTanything", REDIRECT)
    assert refused.value.code == "linkedin_invalid_client"
    assert LinkedInChannel.field_errors[refused.value.code][1] == "client_secret"
    assert "wrong-secret" not in str(refused.value)


async def test_exchange_with_linkedin_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with channel(f"http://127.0.0.1:{port}") as ch:
        with pytest.raises(SetupError) as unreachable:
            await ch.exchange_code("AQTcode", REDIRECT)
    assert unreachable.value.code == "linkedin_unreachable"


async def test_the_token_is_renewed_a_week_before_it_expires(li: FakeLinkedIn) -> None:
    now = datetime.now(UTC)
    soon = channel(li.url, access_token_expires_at=(now + timedelta(days=6)).isoformat())
    later = channel(li.url, access_token_expires_at=(now + timedelta(days=30)).isoformat())
    assert soon.credentials_due(now) and not later.credentials_due(now)
    assert not channel(li.url).credentials_due(now)  # expiry unknown
    async with soon:
        renewed = await soon.renew_credentials(now)
    assert renewed.secrets["access_token"] in li.tokens and renewed.secrets["refresh_token"] != fake_li.REFRESH_TOKEN
    assert datetime.fromisoformat(renewed.details["access_token_expires_at"]) > now + timedelta(days=59)
    assert li.token_calls[-1]["grant_type"] == "refresh_token"
    async with soon:  # the refresh token was used up
        with pytest.raises(SetupError) as refused:
            await soon.renew_credentials(now)
    assert refused.value.code == "linkedin_grant_refused"


# -- onboarding ------------------------------------------------------------------------------------------

def test_urls() -> None:
    assert LinkedInChannel.urls("https://ingram.example", "acme") == {
        "webhook_url": "https://ingram.example/v1/linkedin/webhook/acme", "oauth_redirect_url": REDIRECT}


async def test_setup_stores_without_calling_linkedin() -> None:
    webhook = "https://ingram.example/v1/linkedin/webhook/acme"
    async with channel(enabled=False, consented=False) as ch:  # nothing listens at its api_url
        info = await ch.setup(webhook_url=webhook)
    assert (info.mode, info.webhook_url, info.details) == ("webhook", webhook, {"messaging_enabled": False,
                                                                                "consent_member": ""})
    steps = " ".join(info.steps)
    assert webhook in steps and REDIRECT in steps and "consent" in steps and "approves" in steps
    local = await channel().setup(webhook_url="http://localhost:8000/v1/linkedin/webhook/acme")
    assert "IC_PUBLIC_URL" in local.steps[0]
    assert local.details == {"messaging_enabled": True, "consent_member": fake_li.ADMIN_URN}
    assert fake_li.ADMIN_URN in " ".join(local.steps)


def test_put_validates_and_says_where_to_find_each_field() -> None:
    put = LinkedInChannel.Put(client_id=fake_li.CLIENT_ID, client_secret=fake_li.CLIENT_SECRET,
                              page_urn=fake_li.PAGE_URN)
    assert put.messaging_enabled is None
    for bad in ({"page_urn": "2414183"}, {"page_urn": "urn:li:company:2414183"}, {"client_id": "short"}):
        with pytest.raises(ValidationError):
            LinkedInChannel.Put.model_validate({**put.model_dump(), **bad})
    # The console's form asks for the app and the Page; messaging is switched apart (PATCH, the card's switch).
    assert list(LinkedInChannel.put_help) == [f for f in LinkedInChannel.Put.model_fields if f != "messaging_enabled"]
    assert LinkedInChannel.setup_modes == frozenset() and LinkedInChannel.send_tool == "linkedin_send_message"


def test_address_problem() -> None:
    assert LinkedInChannel.address_problem(fake_li.THREAD) is None
    assert LinkedInChannel.address_problem("two words") and LinkedInChannel.address_problem("")
