"""The Slack channel on its own: signatures, what it parses, what it renders, which tools it offers."""

from __future__ import annotations

import json

import pytest

from channels.errors import ChannelError
from channels.slack import SlackChannel
from channels.types import ApprovalPrompt, InboundMessage, Outbound, RawRequest
from tests.fakes import slack as fake_slack

VECTOR_BODY = b'{"token":"x","challenge":"c0ffee","type":"url_verification"}'


def _channel(**installation: object) -> SlackChannel:
    channel = SlackChannel({"client_id": fake_slack.CLIENT_ID}, {"signing_secret": fake_slack.SIGNING_SECRET},
                           api_url="http://127.0.0.1:9/api")
    channel.attach_installations({fake_slack.TEAM_ID: {"bot_token": fake_slack.BOT_TOKEN,
                                                        "bot_user_id": fake_slack.BOT_USER_ID, **installation}})
    return channel


def _raw(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest("POST", "/v1/slack/webhook/default", headers, {}, body)


def test_the_reference_test_vector_verifies() -> None:  # reference/slack.md
    channel = SlackChannel({}, {"signing_secret": "s3cret"}, api_url="http://127.0.0.1:9")
    channel.clock = lambda: 1767225600.0
    headers = {"X-Slack-Request-Timestamp": "1767225600",
               "X-Slack-Signature": "v0=0faf5ad57f05c25cc8d45b0b8854842a387a1a387422a2d66670e28231ff743c"}
    verdict = channel.verify(_raw(VECTOR_BODY, headers))
    assert (verdict.kind, verdict.body) == ("challenge", "c0ffee")
    channel.clock = lambda: 1767225600.0 + 301  # five minutes and a second later: stale
    assert channel.verify(_raw(VECTOR_BODY, headers)).kind == "reject"


def test_a_body_that_is_not_utf8_is_refused_not_a_crash() -> None:
    body = b"\xff\xfe{}"
    headers = {"X-Slack-Request-Timestamp": "1767225600", "X-Slack-Signature": "v0=" + "0" * 64}
    channel = _channel()
    channel.clock = lambda: 1767225600.0
    assert channel.verify(_raw(body, headers)).kind == "reject"


def test_a_mention_and_its_message_twin_share_one_dedupe_key() -> None:  # reference: both events arrive
    channel = _channel()
    mention = fake_slack.mention_event("summarise", ts="1767225700.000200")
    twin = {**mention, "type": "message", "channel_type": "channel"}
    keys = set()
    for event in (mention, twin):
        [item] = channel.parse_envelope(fake_slack.event_envelope(event))
        assert isinstance(item, InboundMessage) and item.addressed and item.text == "summarise"
        keys.add(item.dedupe_key)
    assert len(keys) == 1


def test_text_we_did_not_write_cannot_ping_or_forge_links() -> None:
    channel = _channel()
    prompt = ApprovalPrompt('Approve post?\n{"text": "<!channel> <https://evil|bank>"}', "a:t", "r:t")
    payloads = channel.render(Outbound("Hi **there** <!here>", ["<!everyone> yes"], approval=prompt))
    shown = json.dumps(payloads)
    assert "<!channel>" not in shown and "<!here>" not in shown and "<!everyone>" not in shown
    assert "<https://evil|bank>" not in shown  # a link may not disguise where it goes
    assert payloads[0]["text"].startswith("Hi *there*")  # Markdown became mrkdwn


def test_tools_follow_the_installations_scopes() -> None:  # SL-7
    address = f"{fake_slack.TEAM_ID}:{fake_slack.DM_CHANNEL_ID}"
    bare = _channel(scopes=["chat:write"])
    assert bare.tools_for(address) == []
    full = _channel(scopes=["chat:write", "im:history", "channels:read"], user_token=fake_slack.USER_TOKEN,
                    user_scopes=["search:read"])
    assert {t.name for t in full.tools_for(address)} == {"slack_search", "slack_read_messages", "slack_list_channels"}
    assert _channel().tools_for("T0ELSEWHERE:C1") == []


async def test_calling_a_tool_the_workspace_did_not_grant_says_so() -> None:
    channel = _channel(scopes=["chat:write"])
    with pytest.raises(ChannelError) as raised:
        await channel.call_tool("slack_search", f"{fake_slack.TEAM_ID}:D1", {"query": "x"})
    assert raised.value.code == "missing_scope" and "search:read" in str(raised.value)
    await channel.aclose()
