"""Slack's flow kit (tests/fakes/flows.py): the fake Slack, an "Add to Slack" install as the proof (the
installer's DM binds), events and interactions signed with the signing secret as Slack signs them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.settings import Settings
from channels import get_channel_class
from channels.base import Channel
from channels.types import RawRequest
from tests.conftest import bearer
from tests.fakes import slack as fake_slack
from tests.fakes.kits import FakeServer, Flow, Kit, Post, Prompt, ServedFake, start_link

PEOPLE = (fake_slack.INSTALLER_ID, fake_slack.OTHER_USER_ID)
# The bot token names the workspace at once, so an agent catch-all answers before any install link is used.
APP = {"client_id": fake_slack.CLIENT_ID, "client_secret": fake_slack.CLIENT_SECRET,
       "signing_secret": fake_slack.SIGNING_SECRET, "bot_token": fake_slack.BOT_TOKEN}
SENDS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open"})


# -- the contract kit (tests/channels/test_contract.py) ---------------------------------------------

SLACK_INTERACTIONS = ("block_actions", "view_submission")


def _slack_raw(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest("POST", "/v1/slack/webhook/default", headers, {}, body)


def _slack_sign(body: bytes) -> RawRequest:
    """Events are signed as posted; interaction fixtures hold the payload JSON, posted as a form."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("type") in SLACK_INTERACTIONS:
        body = fake_slack.interaction_body(data)
        return _slack_raw(body, {"Content-Type": "application/x-www-form-urlencoded", **fake_slack.sign(body)})
    return _slack_raw(body, {"Content-Type": "application/json", **fake_slack.sign(body)})


def _slack_tampered(raw: RawRequest) -> list[RawRequest]:
    headers = dict(raw.headers)
    good = headers["x-slack-signature"]
    stamp = int(headers["x-slack-request-timestamp"])
    return [
        _slack_raw(raw.body, {"content-type": "application/json"}),
        _slack_raw(raw.body, {**headers, "x-slack-signature": good[:-1] + ("0" if good[-1] != "0" else "1")}),
        _slack_raw(raw.body + b" ", headers),  # a body swapped under a valid header
        _slack_raw(raw.body, {**fake_slack.sign(raw.body, timestamp=stamp - 301)}),  # stale
        _slack_raw(raw.body, {**fake_slack.sign(raw.body, secret=fake_slack.SIGNING_SECRET.upper())}),
        _slack_raw(raw.body, {**headers, "x-slack-request-timestamp": "soon"}),
    ]


def _slack_make(url: str) -> Channel:
    channel = get_channel_class("slack")(
        {"client_id": fake_slack.CLIENT_ID}, {"signing_secret": fake_slack.SIGNING_SECRET,
                                             "client_secret": fake_slack.CLIENT_SECRET}, api_url=url)
    channel.attach_installations({fake_slack.TEAM_ID: {
        "bot_token": fake_slack.BOT_TOKEN, "bot_user_id": fake_slack.BOT_USER_ID,
        "installer": fake_slack.INSTALLER_ID}})
    return channel


@asynccontextmanager
async def _slack_fake() -> AsyncIterator[FakeServer]:
    async with fake_slack.run_fake_slack() as fake:
        actions = {"rate_limited": lambda: fake.rate_limit_next("chat.postMessage", retry_after=3),
                   "blocked": lambda: fake.fail_next("chat.postMessage", "channel_not_found"),
                   "server_error": lambda: fake.server_error_next("chat.postMessage")}
        yield ServedFake(fake.api_url, lambda failure: actions[failure]())



CONTRACT = Kit(
    make=_slack_make, sign=_slack_sign, tampered=_slack_tampered, fake=_slack_fake,
    address=f"{fake_slack.TEAM_ID}:{fake_slack.DM_CHANNEL_ID}",
    text_of=lambda payload: payload["text"],
    malformed=[b"{not json", b"[1, 2]", b'{"type": "event_callback"}',  # non-UTF-8 fails verify
               b'{"type": "event_callback", "team_id": "T0TEAM", "event_id": "Ev1", "event": "x"}',
               b"payload=%7Bnot-json", b"payload=%5B%5D"],
)


# -- the flow kit (tests/deployments/test_channel_flows.py) ------------------------------------------

class SlackFlow(Flow):
    kind = "slack"

    def __init__(self, fake: fake_slack.FakeSlack) -> None:
        self.fake = fake

    @classmethod
    @asynccontextmanager
    async def started(cls) -> AsyncIterator[Flow]:
        async with fake_slack.run_fake_slack(consent="allow") as fake:  # the person clicks Allow
            yield cls(fake)

    def configure(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, slack_api_url=self.fake.api_url, slack_oauth_url=self.fake.authorize_url)

    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        answer = await api.put("/v1/tenant/slack", json=APP, headers=bearer(token))
        assert answer.status_code == 200, answer.text

    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        from tests.deployments.slack_helpers import follow_install  # a browser's steps through our OAuth routes

        link = await start_link(api, token, smith_id, "slack", "oauth_install")
        page = await follow_install(api, link["install_url"])
        assert page.status_code == 200 and "Slack connected" in page.text, page.text
        return str(link["id"])

    def identity(self, person: int) -> str:
        return f"slack:{fake_slack.TEAM_ID}:{PEOPLE[person]}"

    def _dm(self, person: int) -> str:
        return self.fake.dm_channel(PEOPLE[person])

    @staticmethod
    def _event(event: dict[str, Any], secret: str = fake_slack.SIGNING_SECRET) -> Post:
        body = json.dumps(fake_slack.event_envelope(event)).encode()
        return Post("/v1/slack/webhook/default", body, {"content-type": "application/json",
                                                        **fake_slack.sign(body, secret=secret)})

    def message(self, person: int, text: str) -> Post:
        return self._event(fake_slack.message_event(text, channel=self._dm(person), user=PEOPLE[person]))

    def forged(self, post: Post) -> Post:
        return dataclasses.replace(post, headers={**post.headers, **fake_slack.sign(post.body, secret="0" * 32)})

    def echo(self, text: str) -> Post:
        event = fake_slack.message_event(text, channel=self._dm(0), user=fake_slack.BOT_USER_ID)
        event["bot_id"] = fake_slack.BOT_ID  # the app's own message, as Slack echoes it in message.im
        return self._event(event)

    def tap(self, person: int, prompt: Prompt) -> Post:
        channel, ts = prompt.message
        if person != 0:  # nobody else is in the owner's DM: a stranger's tap comes from a channel they share
            channel = fake_slack.GENERAL_CHANNEL_ID
        payload = fake_slack.block_actions_payload("ic_approve", prompt.approve, user=PEOPLE[person],
                                                   channel=channel, message_ts=ts)
        body = fake_slack.interaction_body(payload)
        return Post("/v1/slack/webhook/default", body, {"content-type": "application/x-www-form-urlencoded",
                                                        **fake_slack.sign(body)})

    def replies(self, person: int) -> list[str]:
        return [str(m.get("text") or "") for m in self.fake.posted if m.get("channel") == self._dm(person)]

    def prompt(self, person: int) -> Prompt | None:
        for posted in reversed(self.fake.posted):
            if posted.get("channel") == self._dm(person) and posted.get("blocks"):
                elements = posted["blocks"][-1].get("elements") or []
                if elements and elements[0].get("action_id") == "ic_approve":
                    return Prompt(elements[0]["value"], (posted["channel"], posted["ts"]))
        return None

    def refusals(self, person: int) -> list[str]:
        return [str(e.get("text") or "") for e in self.fake.ephemerals if e.get("user") == PEOPLE[person]]

    def outbound(self) -> int:
        return sum(1 for method, _ in self.fake.calls if method in SENDS)


FLOW = SlackFlow
