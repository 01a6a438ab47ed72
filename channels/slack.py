"""Slack channel over slack_sdk: Events API and interactivity in, Web API out (reference/slack.md).

One integration is one shared Slack app (its signing secret and OAuth client), plus the dedicated apps
minted for single smiths (channels/slack_apps.py); every workspace that installed an app is an
installation with its own bot token, attached by the channel hub (``attach_installations``, Bolt's
"authorize per team"). A conversation's address names both: ``"<team id>:<channel id>"`` (the shared
app) or ``"<app id>:<team id>:<channel id>"``, so a send finds its token from the address alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import aiohttp
from pydantic import Field
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from channels import slack_tools
from channels.base import Channel, Deliver
from channels.errors import MalformedPayload
from channels.payloads import parse_json
from channels.slack_apps import SlackAppFactory
from channels.slack_errors import classify
from channels.slack_factory import (
    CONFIG_TOKEN_PATTERN,
    INVALID_CODE,
    REFRESH_TOKEN_PATTERN,
)
from channels.slack_format import approval_blocks, escape, outcome_blocks, to_mrkdwn
from channels.slack_inbound import (
    Installation,
    edit_modal,
    form_payload,
    parse_envelope,
    parse_interaction,
    split_address,
)
from channels.slack_manifest import manifest
from channels.slack_names import DisplayNames
from channels.slack_setup import SlackOnboarding
from channels.types import (
    ApprovalPrompt,
    Capabilities,
    Inbound,
    InboundAction,
    Outbound,
    RawRequest,
    SendResult,
    TapAnswer,
    ToolSpec,
    Verdict,
)

log = logging.getLogger(__name__)

MAX_TEXT = 3900  # chat.postMessage takes 40k, but Slack truncates display past ~4k characters
MAX_CHIP_LABEL = 75
ADDRESS_RE = re.compile(r"^(?:A[A-Z0-9]{2,20}:)?([TE][A-Z0-9]{2,20}):([CDG][A-Z0-9]{2,20})$")


class _ChannelClock(Clock):
    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel

    def now(self) -> float:
        return self.channel.clock()


class SlackChannel(SlackOnboarding, SlackAppFactory, Channel):
    kind: ClassVar[str] = "slack"
    api_url_setting: ClassVar[str] = "slack_api_url"
    display_name: ClassVar[str] = "Slack"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_chips=0, max_chip_label=MAX_CHIP_LABEL, max_text=MAX_TEXT, native_approvals=True)
    send_tool: ClassVar[str] = "slack_send_message"
    setup_keys: ClassVar[frozenset[str]] = frozenset({"mode", "return_url", "display_name", "app_id"})
    setup_modes: ClassVar[frozenset[str]] = frozenset({"oauth_install", "provision"})
    per_installation: ClassVar[bool] = True
    sends_per_second: ClassVar[float] = 1.0  # Slack: about one message a second per channel,
    send_burst: ClassVar[int] = 4  # short bursts allowed (reference/slack.md, "Other methods")
    ack_body: ClassVar[tuple[str, str]] = ("", "text/plain")  # a view_submission takes only an empty 200

    class Config(Channel.Config):
        client_id: str = ""
        mode: str = ""  # webhook | socket_mode (setup decides: Socket Mode when Slack cannot reach us)
        install_url_base: str = ""  # {IC_PUBLIC_URL}/v1/slack/install/ (an install link appends its token)
        config_token_expires_at: str = ""  # the app factory's configuration token (slack_factory)

    class Secrets(Channel.Secrets):
        signing_secret: str = Field(min_length=1, max_length=200)
        client_secret: str = Field(default="", max_length=200)
        bot_token: str = Field(default="", max_length=300)  # a single workspace's token, pasted by hand
        app_token: str = Field(default="", max_length=300)  # xapp-…: Socket Mode behind NAT
        config_token: str = Field(default="", max_length=400)  # the app factory (SL-1): mints per-smith apps
        config_refresh_token: str = Field(default="", max_length=400)

    class Put(Channel.Put):
        client_id: str = Field(min_length=3, max_length=100, pattern=r"^[0-9.]+$")
        client_secret: str = Field(min_length=8, max_length=200)
        signing_secret: str = Field(min_length=8, max_length=200)
        bot_token: str | None = Field(default=None, max_length=300, pattern=r"^xoxb-[A-Za-z0-9-]+$")
        app_token: str | None = Field(default=None, max_length=300, pattern=r"^xapp-[A-Za-z0-9-]+$")
        return_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
        config_token: str | None = Field(default=None, max_length=400, pattern=CONFIG_TOKEN_PATTERN)
        config_refresh_token: str | None = Field(default=None, max_length=400, pattern=REFRESH_TOKEN_PATTERN)

    put_help: ClassVar[dict[str, tuple[str, str]]] = {
        "client_id": ("Client ID", "Your Slack app → Basic Information → App Credentials."),
        "client_secret": ("Client Secret", "Same page, under App Credentials."),
        "signing_secret": ("Signing Secret", "Same page, under App Credentials."),
        "app_token": ("App-level token (optional)", "Only behind NAT: Basic Information → App-Level Tokens, "
                      "scope connections:write (xapp-…). Events then arrive over Socket Mode."),
        "config_refresh_token": ("App configuration refresh token (optional)", "To give each smith its own "
                                 "Slack app: api.slack.com/apps → Your App Configuration Tokens → Generate Token "
                                 "for the workspace, then copy its Refresh Token (xoxe-…). It is rotated "
                                 "automatically before each 12-hour expiry."),
    }
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {
        "invalid_token": ("invalid_bot_token", "bot_token", "Slack rejected this bot token (xoxb-…)"),
        "invalid_app_token": ("invalid_app_token", "app_token", "Slack rejected this app-level token (xapp-…)"),
        INVALID_CODE: (INVALID_CODE, "config_refresh_token", "Slack refused this configuration refresh token "
                       "(expired, revoked or used already): generate a new configuration token")}

    config: Config
    secrets: Secrets

    @classmethod
    def urls(cls, public_url: str, tenant: str) -> dict[str, str]:
        webhook = f"{public_url}/v1/slack/webhook/{tenant}"
        return {"events_url": webhook, "interactivity_url": webhook,
                "oauth_redirect_url": f"{public_url}/v1/slack/oauth/callback",
                "install_url_base": f"{public_url}/v1/slack/install/"}

    @classmethod
    def guide(cls, urls: Mapping[str, str]) -> dict[str, Any]:
        return {"manifest": manifest(urls)}

    def __init__(self, config: Any, secrets: Any, *, api_url: str, http: Any = None) -> None:
        super().__init__(config, secrets, api_url=api_url, http=http)
        self.installations: dict[str, Installation] = {}
        self.apps, self.apps_by_id, self._status_tasks = {}, {}, {}
        self.names = DisplayNames(self._user_name)  # ID-2: shown, never the identity
        self._verifier = SignatureVerifier(self.secrets.signing_secret, clock=_ChannelClock(self))
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    # -- binding -----------------------------------------------------------------------------------

    @classmethod
    def start_link(cls, public: Mapping[str, Any], token: str) -> str | None:
        base = public.get("install_url_base")
        return f"{base}{token}" if base and public.get("client_id") else None

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        if ADDRESS_RE.match(address):
            return None
        return ("a Slack conversation is <team id>:<channel id>, e.g. T0123ABC:C0456DEF (a dedicated app's: "
                "<app id>:<team id>:<channel id>)")

    @classmethod
    def installation_of(cls, address: str) -> str | None:
        return split_address(address)[0] or None

    def attach_installations(self, installations: Mapping[str, Mapping[str, Any]]) -> None:
        self.installations = {
            key: Installation(team_id=key.rpartition(":")[2], bot_token=str(row["bot_token"]),
                               bot_user_id=str(row.get("bot_user_id") or ""), user_token=row.get("user_token"),
                               scopes=frozenset(row.get("scopes") or ()),
                               user_scopes=frozenset(row.get("user_scopes") or ()),
                               installer=row.get("installer"))
            for key, row in installations.items() if row.get("bot_token")}

    def installation(self, team_id: str) -> Installation | None:
        return self.installations.get(team_id)

    # -- the Web API client --------------------------------------------------------------------------

    @property
    def client(self) -> AsyncWebClient:
        """One client and one aiohttp pool per channel instance; each call names its workspace's token."""
        if self._client is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15, connect=5))
            self._client = AsyncWebClient(base_url=f"{self.api_url}/", session=self._session, timeout=15)
        return self._client

    async def aclose(self) -> None:
        for task in list(self._status_tasks.values()):
            task.cancel()
        await self.names.aclose()
        if self._session is not None:
            await self._session.close()
            self._session, self._client = None, None
        await super().aclose()

    def token_for(self, key: str) -> str | None:
        """The bot token of an installation (``"T…"``, or a dedicated app's ``"A…:T…"``)."""
        found = self.installations.get(key)
        return found.bot_token if found else None

    def any_token_of_team(self, team_id: str) -> str | None:
        """A bot token of some app installed in the workspace (reading a person's profile needs any)."""
        found = self.installations.get(team_id)
        if found is None:
            found = next((i for i in self.installations.values() if i.team_id == team_id), None)
        return found.bot_token if found else None

    # -- inbound -----------------------------------------------------------------------------------

    def verify(self, raw: RawRequest) -> Verdict:
        timestamp, signature = raw.header("x-slack-request-timestamp"), raw.header("x-slack-signature")
        if not timestamp or not signature:
            return Verdict.reject("missing signature headers")
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or not signature.isascii():
            return Verdict.reject("malformed signature headers")  # slack_sdk would raise on "²" or "é"
        known, app = self.app_of_request(raw)  # a dedicated app's URL: only that app's secret will do
        if not known:
            return Verdict.reject("no such app")
        verifier = app.verifier if app is not None else self._verifier
        try:
            valid = verifier.is_valid(raw.body, timestamp, signature)  # constant time, 5-minute window
        except (UnicodeDecodeError, ValueError, TypeError):  # slack_sdk signs the body as text
            return Verdict.reject("body or headers not as Slack sends them")
        if not valid:
            return Verdict.reject("bad or stale signature")
        if raw.body[:1] == b"{":
            try:
                data = parse_json(raw.body)
            except MalformedPayload:
                return Verdict.accept()  # parse answers 400
            if isinstance(data, dict) and data.get("type") == "url_verification":
                return Verdict.challenge(str(data.get("challenge", "")))
        return Verdict.accept()

    def parse(self, raw: RawRequest) -> list[Inbound]:
        _, app = self.app_of_request(raw)
        app_id = app.app_id if app is not None else None
        if raw.body[:8] == b"payload=":
            return parse_interaction(form_payload(raw.body), app_id)
        data = parse_json(raw.body)
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise MalformedPayload("not a Slack event envelope")
        return self.parse_envelope(data, app_id)

    def parse_envelope(self, data: dict[str, Any], app_id: str | None = None) -> list[Inbound]:
        """An Events API envelope (webhook body or a Socket Mode ``events_api`` payload)."""
        items = parse_envelope(data, self.installations, app_id)
        return [self.names.named(item) for item in items]

    def learn(self, items: Sequence[Inbound]) -> None:
        self.names.learn(items)
        self.assistant_learn(items)

    async def _user_name(self, sender_id: str) -> str:
        _, team, user = sender_id.split(":", 2)
        token = self.any_token_of_team(team)
        if token is None:
            return ""
        person = (await self.client.users_info(token=token, user=user)).get("user") or {}
        profile = person.get("profile") or {}
        return str(profile.get("display_name") or profile.get("real_name") or person.get("real_name") or "")

    # -- Socket Mode: the pull receiver behind NAT -----------------------------------------------------

    def pulls(self) -> bool:
        return bool(self.secrets.app_token) and self.config.mode == "socket_mode"

    def parse_socket(self, request_type: str, payload: Any) -> list[Inbound]:
        """A Socket Mode envelope's payload: the same Events API body or interaction as over HTTP."""
        if not isinstance(payload, dict):
            raise MalformedPayload("socket mode payload is not an object")
        if request_type == "events_api":
            return self.parse_envelope(payload)
        if request_type == "interactive":
            return parse_interaction(payload)
        return []

    async def pull_forever(self, deliver: Deliver) -> None:
        """B4: events and interactions over Socket Mode (slack_sdk's client, which reconnects by itself).
        Each envelope is stored before it is acknowledged, so a crash in between makes Slack resend it."""
        client = SocketModeClient(app_token=self.secrets.app_token,
                                  web_client=AsyncWebClient(base_url=f"{self.api_url}/"))

        async def on_request(socket: SocketModeClient, request: SocketModeRequest) -> None:
            try:
                items = self.parse_socket(request.type, request.payload)
            except MalformedPayload as exc:
                log.warning("slack: skipping a malformed socket mode envelope: %s", exc)
                items = []
            await deliver(items)
            await socket.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

        client.socket_mode_request_listeners.append(on_request)  # type: ignore[arg-type]
        await client.connect()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await client.close()

    # -- outbound ----------------------------------------------------------------------------------

    def render(self, outbound: Outbound) -> list[dict[str, Any]]:
        approval = outbound.approval
        if approval is not None:
            approval = replace(approval, text=escape(approval.text))
        return super().render(replace(outbound, text=to_mrkdwn(outbound.text), approval=approval))

    def chips_as_text(self, chips: Sequence[str]) -> str:
        return "\n".join(f"• {escape(label)}" for label in chips)  # CHIP-4: a short bulleted list

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": text}
        if thread:
            payload["thread_ts"] = thread
        return payload

    def with_approval(self, payload: dict[str, Any], approval: ApprovalPrompt) -> dict[str, Any]:
        return {**payload, "blocks": approval_blocks(payload["text"], approval)}

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        team, conversation = split_address(address)
        token = self.token_for(team)
        if token is None:
            return SendResult.failed("not_installed", f"workspace {team} has not installed the app", retryable=False)
        try:
            answer = await self.client.chat_postMessage(token=token, channel=conversation, **payload)
        except Exception as exc:
            return classify(exc)
        await self.after_send(address, payload)
        return SendResult.sent(str(answer.get("ts")))

    async def edit_approval(self, address: str, provider_message_id: str, outcome_text: str) -> SendResult:
        team, conversation = split_address(address)
        token = self.token_for(team)
        if token is None:
            return SendResult.failed("not_installed", f"workspace {team} has not installed the app", retryable=False)
        try:
            await self.client.chat_update(token=token, channel=conversation, ts=provider_message_id,
                                          text=outcome_text, blocks=outcome_blocks(outcome_text))
        except Exception as exc:
            return classify(exc)
        return SendResult.sent(provider_message_id)

    async def acknowledge_action(self, action: InboundAction, answer: TapAnswer) -> None:
        """Approve and Reject show on the prompt itself (edited after the decision); a refusal is an
        ephemeral note only the tapper sees; Edit opens the correction modal."""
        team, conversation = split_address(action.address)
        token = self.token_for(team)
        if token is None:
            return
        try:
            if answer.ask_for_edit and action.action_id:
                await self.client.views_open(token=token, trigger_id=action.action_id, view=edit_modal(action))
            elif answer.refused and answer.text:
                user = action.sender_id.rsplit(":", 1)[-1]
                await self.client.chat_postEphemeral(token=token, channel=conversation, user=user, text=answer.text)
        except Exception as exc:
            log.warning("slack: answering a tap failed: %s", classify(exc).error)

    # -- tools (SL-7) ---------------------------------------------------------------------------------

    def tools_for(self, address: str) -> list[ToolSpec]:
        return slack_tools.allowed(self.installations.get(split_address(address)[0]))

    async def call_tool(self, name: str, address: str, arguments: Mapping[str, Any]) -> str:
        team, conversation = split_address(address)
        return await slack_tools.call(self.client, self.installations.get(team), conversation, name, arguments)

