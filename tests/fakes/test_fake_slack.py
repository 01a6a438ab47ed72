"""The fake Slack itself: slack_sdk's clients (async, sync, Socket Mode) against it, and its pure helpers."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    DM_CHANNEL_ID,
    GENERAL_CHANNEL_ID,
    INSTALLER_ID,
    OTHER_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    TEAM_NAME,
    USER_TOKEN,
    FakeSlack,
    block_actions_payload,
    event_envelope,
    interaction_body,
    mention_event,
    message_event,
    numbered_user,
    run_fake_slack,
    serve_fake_slack,
    sign,
    view_submission_payload,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "slack" / "in"
REDIRECT = "https://ingram.example/v1/slack/oauth/callback"
TS_RE = re.compile(r"^\d{10}\.\d{6}$")
# slack_sdk's async oauth_v2_access builds aiohttp.BasicAuth, which aiohttp 3.14 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with run_fake_slack() as fake:
        yield fake


def bot(fake: FakeSlack, token: str = BOT_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url)


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def install(fake: FakeSlack, http: httpx.AsyncClient, **query: str) -> str:
    """Walk the consent page like a person: open the authorize URL, follow "Allow"; returns the code."""
    params = {"client_id": CLIENT_ID, "scope": "chat:write,im:history", "redirect_uri": REDIRECT,
              "state": "st-1", **query}
    page = await http.get(fake.authorize_url, params=params)
    assert page.status_code == 200
    allow = re.search(r"id='allow' href='([^']+)'", page.text)
    assert allow is not None
    back = await http.get(fake.url + allow.group(1).replace("&amp;", "&"))
    assert back.status_code == 302
    query_back = parse_qs(urlsplit(back.headers["location"]).query)
    assert query_back["state"] == ["st-1"]
    return query_back["code"][0]


# -- signing and builders (no server) ----------------------------------------------------------------

def test_sign_reproduces_the_reference_vector() -> None:
    body = b'{"token":"x","challenge":"c0ffee","type":"url_verification"}'
    headers = sign(body, "s3cret", 1767225600)
    assert headers == {"X-Slack-Request-Timestamp": "1767225600",
                       "X-Slack-Signature": "v0=0faf5ad57f05c25cc8d45b0b8854842a387a1a387422a2d66670e28231ff743c"}


def test_signed_interaction_body_passes_the_sdk_verifier_and_round_trips() -> None:
    payload = block_actions_payload("ic_approve", "a:tok_1")
    body = interaction_body(payload)
    headers = sign(body)
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not verifier.is_valid(body + b"x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert body.startswith(b"payload=")
    assert json.loads(parse_qs(body.decode())["payload"][0]) == payload


def test_event_builders_make_slack_shapes() -> None:
    first, second = message_event("hi"), message_event("again")
    assert TS_RE.match(first["ts"]) and float(second["ts"]) > float(first["ts"])
    assert (first["channel"], first["user"], first["channel_type"]) == (DM_CHANNEL_ID, INSTALLER_ID, "im")
    envelope = event_envelope(first)
    assert envelope["type"] == "event_callback" and envelope["team_id"] == TEAM_ID
    assert envelope["event_id"].startswith("Ev") and envelope["api_app_id"] == APP_ID
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID
    mention = mention_event("summarise", thread_ts="1767225000.000050")
    assert mention["text"] == f"<@{BOT_USER_ID}> summarise" and mention["thread_ts"] == "1767225000.000050"
    assert {"type": "user", "user_id": BOT_USER_ID} in mention["blocks"][0]["elements"][0]["elements"]


def test_interaction_builders_make_slack_shapes() -> None:
    action = block_actions_payload("ic_reject", "r:tok_1", message_ts="1767225605.000300")
    assert action["container"]["message_ts"] == "1767225605.000300"
    assert action["actions"][0]["value"] == "r:tok_1" and action["actions"][0]["text"]["text"] == "Reject"
    assert action["trigger_id"] and action["team"]["id"] == TEAM_ID
    view = view_submission_payload("ic_edit", '{"token": "e:tok_1"}', {"edit": {"correction": "staging first"}})
    assert view["view"]["state"]["values"] == {
        "edit": {"correction": {"type": "plain_text_input", "value": "staging first"}}}
    assert view["view"]["callback_id"] == "ic_edit" and view["user"]["id"] == INSTALLER_ID


FIXTURE_NAMES = ["challenge_url_verification", "dm_message", "app_mention_in_thread", "channel_message_mention",
                 "channel_message_plain", "dm_thread_reply", "echo_own_bot_message",
                 "echo_other_bot_message", "ignored_message_changed", "ignored_message_deleted",
                 "ignored_channel_join", "file_share_dm", "app_uninstalled", "tokens_revoked",
                 "block_actions_approve", "block_actions_reject", "block_actions_edit", "view_submission_edit",
                 "ignored_assistant_thread_started"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_has_slack_shape(name: str) -> None:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    if name == "challenge_url_verification":
        assert data["type"] == "url_verification" and data["challenge"]
    elif name.startswith(("block_actions", "view_submission")):
        assert data["type"] in ("block_actions", "view_submission") and data["team"]["id"] == TEAM_ID
        value = (data["actions"][0]["value"] if "actions" in data
                 else json.loads(data["view"]["private_metadata"])["token"])
        assert value[:2] == {"approve": "a:", "reject": "r:", "edit": "e:"}[name.rsplit("_", 1)[1]]
    else:
        assert data["type"] == "event_callback" and data["team_id"] == TEAM_ID and data["api_app_id"] == APP_ID
        assert data["event_id"].startswith("Ev") and isinstance(data["event_time"], int)
        assert data["authorizations"][0]["user_id"] == BOT_USER_ID


def test_fixture_details_match_their_names() -> None:
    def event(name: str) -> dict[str, Any]:
        return json.loads((FIXTURES / f"{name}.json").read_text())["event"]
    assert f"<@{BOT_USER_ID}>" in event("channel_message_mention")["text"]
    assert "<@" not in event("channel_message_plain")["text"]
    own = event("echo_own_bot_message")
    assert own["bot_id"] == BOT_ID and own["user"] == BOT_USER_ID
    assert event("echo_other_bot_message")["subtype"] == "bot_message"
    assert event("file_share_dm")["subtype"] == "file_share" and event("file_share_dm")["text"]
    reply = event("dm_thread_reply")
    assert reply["thread_ts"] != reply["ts"] and reply["channel_type"] == "im"


# -- OAuth install ----------------------------------------------------------------------------------

async def test_consent_page_then_code_exchange_gives_documented_shape(slack: FakeSlack) -> None:
    async with httpx.AsyncClient() as http:
        page = await http.get(slack.authorize_url, params={
            "client_id": CLIENT_ID, "scope": "chat:write,im:history", "user_scope": "search:read",
            "redirect_uri": REDIRECT, "state": "st-1"})
        assert f"<title>Ingram wants to access {TEAM_NAME}</title>" in page.text
        assert "<li>chat:write</li>" in page.text and "<li>search:read</li>" in page.text
        assert "id='cancel'" in page.text
        code = await install(slack, http, user_scope="search:read")
    answer = (await AsyncWebClient(base_url=slack.api_url).oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT)).data
    assert answer["access_token"].startswith("xoxb-") and answer["token_type"] == "bot"
    assert answer["scope"] == "chat:write,im:history" and answer["bot_user_id"] == BOT_USER_ID
    assert answer["team"] == {"id": TEAM_ID, "name": TEAM_NAME} and answer["app_id"] == APP_ID
    assert answer["enterprise"] is None and answer["is_enterprise_install"] is False
    user = answer["authed_user"]
    assert user["id"] == INSTALLER_ID and user["token_type"] == "user" and user["scope"] == "search:read"
    assert user["access_token"].startswith("xoxp-")
    who = (await bot(slack, answer["access_token"]).auth_test()).data
    assert (who["team_id"], who["user_id"], who["bot_id"]) == (TEAM_ID, BOT_USER_ID, BOT_ID)


async def test_code_is_single_use_and_checks_client_and_redirect(slack: FakeSlack) -> None:
    client = AsyncWebClient(base_url=slack.api_url)
    async with httpx.AsyncClient() as http:
        code = await install(slack, http)
        codes = [await install(slack, http) for _ in range(3)]
    assert "authed_user" in (await client.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                                          code=code, redirect_uri=REDIRECT)).data
    for kwargs, error in [({"code": code}, "invalid_code"),
                          ({"code": codes[0], "client_secret": "wrong"}, "bad_client_secret"),
                          ({"code": codes[1], "client_id": "999.999"}, "invalid_client_id"),
                          ({"code": codes[2], "redirect_uri": REDIRECT + "/other"}, "bad_redirect_uri")]:
        args = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT, **kwargs}
        assert (await api_error(client.oauth_v2_access(**args))).response["error"] == error
    # a wrong client leaves the code usable; without user scopes there is no user token
    answer = (await client.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=codes[1],
                                           redirect_uri=REDIRECT)).data
    assert answer["authed_user"] == {"id": INSTALLER_ID} and answer["access_token"] in slack.tokens


async def test_consent_modes_redirect_straight_back(slack: FakeSlack) -> None:
    query = {"client_id": CLIENT_ID, "scope": "chat:write", "redirect_uri": REDIRECT, "state": "s"}
    async with httpx.AsyncClient() as http:
        slack.consent = "allow"
        allowed = await http.get(slack.authorize_url, params=query)
        slack.consent = "cancel"
        cancelled = await http.get(slack.authorize_url, params=query)
        unknown = await http.get(slack.authorize_url, params={**query, "client_id": "nope"})
        no_redirect = await http.get(slack.authorize_url, params={**query, "redirect_uri": ""})
    assert allowed.status_code == 302 and allowed.headers["location"].startswith(REDIRECT + "?code=")
    assert cancelled.status_code == 302 and cancelled.headers["location"] == f"{REDIRECT}?error=access_denied&state=s"
    assert (unknown.status_code, no_redirect.status_code) == (400, 400)


async def test_install_in_a_second_workspace_and_revoke(slack: FakeSlack) -> None:
    second = slack.add_workspace("T0SECOND", "Second Co")
    async with httpx.AsyncClient() as http:
        code = await install(slack, http, team="T0SECOND")
    answer = (await AsyncWebClient(base_url=slack.api_url).oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT)).data
    assert answer["team"]["id"] == "T0SECOND" and answer["authed_user"]["id"] == second.installer_id
    assert (await bot(slack, answer["access_token"]).auth_test())["team_id"] == "T0SECOND"
    assert slack.revoke_tokens("T0SECOND") == 1
    assert (await api_error(bot(slack, answer["access_token"]).auth_test())).response["error"] == "invalid_auth"
    assert (await bot(slack).auth_test())["team_id"] == TEAM_ID  # the other workspace is untouched


# -- Web API ------------------------------------------------------------------------------------------

async def test_post_message_records_and_answers_like_slack(slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    answer = (await bot(slack).chat_postMessage(channel=DM_CHANNEL_ID, text="hi", blocks=blocks)).data
    assert TS_RE.match(answer["ts"]) and answer["channel"] == DM_CHANNEL_ID
    assert answer["message"]["bot_id"] == BOT_ID and answer["message"]["user"] == BOT_USER_ID
    posted = slack.posted[0]
    assert (posted["channel"], posted["ts"], posted["text"], posted["blocks"]) == (DM_CHANNEL_ID, answer["ts"], "hi",
                                                                                   blocks)
    assert slack.calls_to("chat.postMessage")[0]["token"] == BOT_TOKEN
    second = await bot(slack).chat_postMessage(channel=OTHER_USER_ID, text="to a user id")
    assert second["channel"].startswith("D") and second["ts"] != answer["ts"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_errors(slack: FakeSlack) -> None:
    slack.add_channel("C0PRIVATE", "secret-plans", members=[INSTALLER_ID])
    slack.add_token("xoxb-limited", kind="bot", scopes=["users:read"], user_id=BOT_USER_ID, bot_id=BOT_ID)
    cases = [(bot(slack).chat_postMessage(channel="C0NOPE", text="x"), "channel_not_found"),
             (bot(slack).chat_postMessage(channel="C0PRIVATE", text="x"), "not_in_channel"),
             (bot(slack).chat_postMessage(channel=DM_CHANNEL_ID), "no_text"),
             (bot(slack, "xoxb-revoked").chat_postMessage(channel=DM_CHANNEL_ID, text="x"), "invalid_auth"),
             (bot(slack, APP_TOKEN).chat_postMessage(channel=DM_CHANNEL_ID, text="x"), "not_allowed_token_type")]
    for call, error in cases:
        assert (await api_error(call)).response["error"] == error
    missing = (await api_error(bot(slack, "xoxb-limited").chat_postMessage(channel=DM_CHANNEL_ID, text="x"))).response
    assert (missing["error"], missing["needed"], missing["provided"]) == ("missing_scope", "chat:write", "users:read")
    assert (await api_error(AsyncWebClient(base_url=slack.api_url).auth_test())).response["error"] == "not_authed"
    assert (await api_error(bot(slack).api_call("nope.method"))).response["error"] == "unknown_method"
    assert not slack.posted


async def test_update_ephemeral_and_views(slack: FakeSlack) -> None:
    client = bot(slack)
    ts = (await client.chat_postMessage(channel=DM_CHANNEL_ID, text="Approve?"))["ts"]
    updated = await client.chat_update(channel=DM_CHANNEL_ID, ts=ts, text="Approved", blocks=[])
    assert updated["message"]["text"] == "Approved" and updated["message"]["blocks"] == []
    assert slack.updates[0]["ts"] == ts and slack.updates[0]["text"] == "Approved"
    person = slack.add_message(DM_CHANNEL_ID, "mine")
    assert (await api_error(client.chat_update(channel=DM_CHANNEL_ID, ts="1.000001", text="x"))).response[
        "error"] == "message_not_found"
    assert (await api_error(client.chat_update(channel=DM_CHANNEL_ID, ts=person["ts"], text="x"))).response[
        "error"] == "cant_update_message"
    ephemeral = await client.chat_postEphemeral(channel=GENERAL_CHANNEL_ID, user=OTHER_USER_ID, text="only you")
    assert slack.ephemerals[0]["message_ts"] == ephemeral["message_ts"] and slack.ephemerals[0]["user"] == OTHER_USER_ID
    assert (await api_error(client.chat_postEphemeral(channel=DM_CHANNEL_ID, user=OTHER_USER_ID, text="x"))).response[
        "error"] == "user_not_in_channel"
    modal = {"type": "modal", "callback_id": "ic_edit", "title": {"type": "plain_text", "text": "Edit"}, "blocks": []}
    view = (await client.views_open(trigger_id="123.456.abc", view=modal))["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "ic_edit"
    assert slack.views_opened[0]["trigger_id"] == "123.456.abc" and slack.views_opened[0]["view"] == modal
    assert (await api_error(client.views_open(trigger_id="", view=modal))).response["error"] == "invalid_arguments"


async def test_users_and_dm_open(slack: FakeSlack) -> None:
    client = bot(slack)
    user = (await client.users_info(user=INSTALLER_ID))["user"]
    assert user["id"] == INSTALLER_ID and user["profile"]["display_name"] and not user["is_bot"]
    assert (await client.users_info(user=BOT_USER_ID))["user"]["is_bot"] is True
    assert (await api_error(client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"
    opened = await client.conversations_open(users=INSTALLER_ID)
    assert opened["channel"]["id"] == DM_CHANNEL_ID and opened["already_open"] is True
    first, again = await client.conversations_open(users=OTHER_USER_ID), await client.conversations_open(
        users=OTHER_USER_ID)
    assert first["channel"]["id"] == again["channel"]["id"] == slack.dm_channel(OTHER_USER_ID)
    assert (await api_error(client.conversations_open(users=BOT_USER_ID))).response["error"] == "cannot_dm_bot"


async def test_history_replies_and_pagination(slack: FakeSlack) -> None:
    client = bot(slack)
    for n in range(5):
        slack.add_message(GENERAL_CHANNEL_ID, f"note {n}")
    parent = slack.add_message(GENERAL_CHANNEL_ID, "thread start")
    await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="a reply", thread_ts=parent["ts"])
    pages = [page.data async for page in await client.conversations_history(channel=GENERAL_CHANNEL_ID, limit=2)]
    texts = [m["text"] for page in pages for m in page["messages"]]
    assert texts == ["thread start", "note 4", "note 3", "note 2", "note 1", "note 0"]  # newest first, no replies
    assert len(pages) == 3 and pages[0]["has_more"] and pages[-1]["response_metadata"]["next_cursor"] == ""
    assert pages[0]["messages"][0]["reply_count"] == 1
    replies = (await client.conversations_replies(channel=GENERAL_CHANNEL_ID, ts=parent["ts"]))["messages"]
    assert [m["text"] for m in replies] == ["thread start", "a reply"]
    assert (await api_error(client.conversations_replies(channel=GENERAL_CHANNEL_ID, ts="1.000001"))).response[
        "error"] == "thread_not_found"
    assert (await api_error(client.conversations_history(channel=GENERAL_CHANNEL_ID, cursor="@@"))).response[
        "error"] == "invalid_cursor"


async def test_conversations_list_paginates_and_filters_types(slack: FakeSlack) -> None:
    for n in range(3):
        slack.add_channel(f"C0EXTRA{n}", f"extra-{n}")
    slack.add_channel("C0HIDDEN", "hidden", is_private=True, members=[INSTALLER_ID])
    pages = [page.data async for page in await bot(slack).conversations_list(limit=3)]
    ids = [c["id"] for page in pages for c in page["channels"]]
    assert ids == [GENERAL_CHANNEL_ID, "C0EXTRA0", "C0EXTRA1", "C0EXTRA2"] and len(pages) == 2
    ims = (await bot(slack).conversations_list(types="im"))["channels"]
    assert [(c["id"], c["user"]) for c in ims] == [(DM_CHANNEL_ID, INSTALLER_ID)]


async def test_search_needs_a_user_token(slack: FakeSlack) -> None:
    slack.add_message(GENERAL_CHANNEL_ID, "the nightly Deploy failed", user=OTHER_USER_ID)
    slack.add_message(GENERAL_CHANNEL_ID, "lunch?")
    found = (await bot(slack, USER_TOKEN).search_messages(query="deploy failed", count=5))
    assert found["query"] == "deploy failed" and found["messages"]["total"] == 1
    match = found["messages"]["matches"][0]
    assert match["user"] == OTHER_USER_ID and match["channel"]["id"] == GENERAL_CHANNEL_ID
    assert match["permalink"].startswith("https://ingram-test.slack.com/archives/C0GENERAL/p")
    assert (await api_error(bot(slack).search_messages(query="deploy"))).response["error"] == "not_allowed_token_type"


# -- test controls ------------------------------------------------------------------------------------

async def test_fail_next_and_server_error(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", "channel_not_found")
    slack.server_error_next("auth.test")
    assert (await api_error(bot(slack).chat_postMessage(channel=DM_CHANNEL_ID, text="x"))).response[
        "error"] == "channel_not_found"
    assert (await bot(slack).chat_postMessage(channel=DM_CHANNEL_ID, text="x"))["ok"]
    assert (await api_error(bot(slack).auth_test())).response.status_code == 500


async def test_rate_limit_sends_429_with_retry_after(slack: FakeSlack) -> None:
    slack.rate_limit_next("chat.postMessage", retry_after=7)
    limited = (await api_error(bot(slack).chat_postMessage(channel=DM_CHANNEL_ID, text="x"))).response
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    slack.rate_limit_next("chat.postMessage", retry_after=0)
    client = bot(slack)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    assert (await client.chat_postMessage(channel=DM_CHANNEL_ID, text="again"))["ok"]
    assert len(slack.calls_to("chat.postMessage")) == 3 and len(slack.posted) == 1


async def test_hold_piles_calls_up_until_release(slack: FakeSlack) -> None:
    slack.hold("chat.postMessage")
    tasks = [asyncio.create_task(bot(slack).chat_postMessage(channel=DM_CHANNEL_ID, text=f"m{n}")) for n in range(3)]
    await eventually(lambda: slack.holding == 3)
    assert not slack.posted
    slack.release()
    assert all(answer["ok"] for answer in await asyncio.gather(*tasks))
    assert len(slack.posted) == 3 and slack.holding == 0


async def test_latency_delays_every_answer() -> None:
    async with run_fake_slack(latency_s=0.2) as fake:
        started = time.monotonic()
        await bot(fake).auth_test()
        assert time.monotonic() - started >= 0.2


def test_sync_web_client_form_bodies_and_get_queries() -> None:
    with serve_fake_slack(consent="allow") as fake:
        client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
        assert client.conversations_open(users=OTHER_USER_ID)["channel"]["id"].startswith("D")  # form body
        assert client.users_info(user=OTHER_USER_ID)["user"]["name"] == "sam"  # GET query
        ts = client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="sync")["ts"]  # JSON body
        assert client.conversations_history(channel=GENERAL_CHANNEL_ID)["messages"][0]["ts"] == ts
        location = httpx.get(fake.authorize_url, params={"client_id": CLIENT_ID, "scope": "chat:write",
                                                        "redirect_uri": REDIRECT}).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        answer = WebClient(base_url=fake.api_url).oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                                                  code=code, redirect_uri=REDIRECT)
        assert answer["access_token"] in fake.tokens


async def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    payload = block_actions_payload("ic_approve", "a:tok_1", response_url=slack.response_url())
    async with httpx.AsyncClient() as http:
        answer = await http.post(payload["response_url"], json={"replace_original": True, "text": "Approved"})
    assert answer.status_code == 200 and slack.responded[0]["body"]["text"] == "Approved"


# -- Socket Mode ----------------------------------------------------------------------------------------

async def test_socket_mode_client_connects_receives_and_acks(slack: FakeSlack) -> None:
    requests: list[SocketModeRequest] = []
    hellos: list[dict[str, Any]] = []

    async def on_request(client: Any, request: SocketModeRequest) -> None:
        requests.append(request)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    async def on_message(client: Any, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            hellos.append(message)

    client = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=slack.api_url))
    client.socket_mode_request_listeners.append(on_request)
    client.message_listeners.append(on_message)
    try:
        await client.connect()
        await slack.wait_socket_connected(5)
        envelope = event_envelope(message_event("over the socket"))
        envelope_id = await slack.push_socket("events_api", envelope)
        assert await slack.wait_socket_ack(envelope_id) == {"envelope_id": envelope_id}
        assert requests[0].type == "events_api" and requests[0].payload == envelope
        assert hellos[0]["connection_info"] == {"app_id": APP_ID} and hellos[0]["num_connections"] == 1
        assert slack.calls_to("apps.connections.open")[0]["token"] == APP_TOKEN

        await slack.disconnect_socket()  # Slack's "refresh_requested": the SDK fetches a new URL and reconnects
        await eventually(lambda: len(slack.calls_to("apps.connections.open")) == 2)
        await slack.wait_socket_connected(5, accepted=2)  # the new connection, not the old one still closing
        second = await slack.push_socket("interactive", block_actions_payload("ic_approve", "a:tok_1"))
        await slack.wait_socket_ack(second)
        assert requests[-1].type == "interactive" and len(slack.calls_to("apps.connections.open")) == 2
    finally:
        await client.close()


async def test_socket_refuses_unknown_tickets_and_non_app_tokens(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(slack.url.replace("http", "ws") + "/socket?ticket=forged")
    assert (await api_error(bot(slack).apps_connections_open(app_token=BOT_TOKEN))).response[
        "error"] == "not_allowed_token_type"
    with pytest.raises(RuntimeError):
        await slack.push_socket("events_api", {})


# -- its own process ------------------------------------------------------------------------------------

def test_runs_as_a_module_for_benchmarks() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.slack", "--port", str(port), "--latency-ms", "1",
                                "--users", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        client, deadline = WebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{port}/api/"), time.monotonic() + 20
        while True:
            try:
                assert client.auth_test()["user_id"] == BOT_USER_ID
                break
            except OSError:  # not listening yet
                assert time.monotonic() < deadline and process.poll() is None, process.stderr
                time.sleep(0.1)
        # --users: numbered people whose DMs take posts, and the record a benchmark reads from another process
        user_id, dm_id = numbered_user(2)
        assert client.users_info(user=user_id)["user"]["id"] == user_id
        before = time.monotonic()
        for text in ("first", "second"):
            assert client.chat_postMessage(channel=dm_id, text=text)["channel"] == dm_id
        record = httpx.get(f"http://127.0.0.1:{port}/_bench/posted", params={"since": 1}).json()
        assert record["count"] == 2 and [m["text"] for m in record["posted"]] == ["second"]
        second = record["posted"][0]
        assert second["channel"] == dm_id and before < second["received_at"] < time.monotonic()  # one clock
        with pytest.raises(SlackApiError, match="channel_not_found"):  # only as many people as asked for
            client.chat_postMessage(channel=numbered_user(3)[1], text="third")
    finally:
        process.terminate()
        process.wait(10)
