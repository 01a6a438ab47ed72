"""Telegram Bot API channel, over python-telegram-bot's ``Bot`` (reference/telegram.md).

Calls go to ``{api_url}/bot{token}/{method}``. Inbound updates arrive by webhook (verified by the
secret token header) or by long polling (``get_updates`` then ``parse_update``).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets as pysecrets
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    Update,
    User,
)
from telegram.error import (
    BadRequest,
    InvalidToken,
    TelegramError,
)

from channels.base import Channel, Deliver
from channels.errors import MalformedPayload, SetupError
from channels.payloads import load_json, publicly_reachable
from channels.ptb_aiohttp import AiohttpRequest
from channels.telegram_errors import classify
from channels.types import (
    ApprovalPrompt,
    Capabilities,
    Inbound,
    InboundAction,
    InboundMessage,
    RawRequest,
    SendResult,
    SetupInfo,
    TapAnswer,
    Verdict,
)

log = logging.getLogger(__name__)

# Provider limits (reference/telegram.md) and our product limits (CHIP-1: a few labels under 20).
MAX_TEXT = 4096  # UTF-16 code units after entity parsing
MAX_CHIPS = 6
MAX_CHIP_LABEL = 19
CHIPS_PER_ROW = 2
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER = 200
WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
LONG_POLL_S = 20
ALLOWED_UPDATES = ("message", "callback_query")
SECRET_HEADER = "x-telegram-bot-api-secret-token"
START_RE = re.compile(r"^/start(?:@\w+)? ([A-Za-z0-9_-]{1,64})$")
DEEP_LINK_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOKEN_RE = r"^\d+:[A-Za-z0-9_-]+$"
SECRET_RE = r"^[A-Za-z0-9_-]{1,256}$"

# HTTP tuning: one pool per channel instance; the outbox caps concurrency above this.
POOL_SIZE = 64
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 5.0

APPROVE_LABEL = "✅ Approve"
REJECT_LABEL = "❌ Reject"
EDIT_LABEL = "✏️ Edit"

CHAT_ID_RE = re.compile(r"^(-?[1-9][0-9]{0,19}|@[A-Za-z][A-Za-z0-9_]{4,31})$")


class TelegramChannel(Channel):
    kind: ClassVar[str] = "telegram"
    api_url_setting: ClassVar[str] = "telegram_api_url"
    display_name: ClassVar[str] = "Telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_chips=MAX_CHIPS, max_chip_label=MAX_CHIP_LABEL, max_text=MAX_TEXT, native_approvals=True
    )

    send_tool: ClassVar[str] = "telegram_send_message"
    setup_modes: ClassVar[frozenset[str]] = frozenset({"start_token"})

    @classmethod
    def start_link(cls, public: Mapping[str, Any], token: str) -> str | None:
        username = public.get("bot_username")
        return deep_link(str(username), token) if username else None

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        if CHAT_ID_RE.match(address):
            return None
        return "a Telegram chat id is an integer (e.g. 123456789, or -100… for groups) or a @channelusername"

    @classmethod
    def owner_of_address(cls, address: str) -> str | None:
        # A private chat's id is its user's id; groups (negative ids) and channels have no single owner.
        return f"telegram:{address}" if address.isdigit() else None

    class Config(Channel.Config):
        bot_username: str = ""  # learnt from getMe at setup; needed to see @mentions in groups
        mode: str = ""  # webhook | polling (setup decides: polling when Telegram cannot reach us)

    class Secrets(Channel.Secrets):
        bot_token: str = Field(pattern=TOKEN_RE)
        webhook_secret: str = Field(default="", pattern=r"^$|" + SECRET_RE)

    class Put(Channel.Put):
        bot_token: str = Field(min_length=10, max_length=200, pattern=TOKEN_RE, description="From @BotFather.")

    put_help: ClassVar[dict[str, tuple[str, str]]] = {
        "bot_token": ("Bot token", "In Telegram, message @BotFather, send /newbot and copy the token it gives you.")}
    field_errors: ClassVar[dict[str, tuple[str, str, str]]] = {
        "invalid_token": ("invalid_bot_token", "bot_token",
                          "Telegram rejected this bot token; copy it again from @BotFather")}

    config: Config
    secrets: Secrets

    def __init__(self, config: BaseModel | Mapping[str, Any], secrets: BaseModel | Mapping[str, Any], *,
                 api_url: str, http: httpx.AsyncClient | None = None) -> None:
        # PTB sends through its own pool (AiohttpRequest), so ``http`` is not used here.
        super().__init__(config, secrets, api_url=api_url, http=http)
        self.bot_id = int(self.secrets.bot_token.split(":", 1)[0])
        self._request = AiohttpRequest(
            pool_size=POOL_SIZE, connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
            write_timeout=WRITE_TIMEOUT_S, pool_timeout=POOL_TIMEOUT_S,
        )
        # Long polls hold a connection for their whole timeout: keep them off the send pool.
        self._updates_request = AiohttpRequest(pool_size=1, connect_timeout=CONNECT_TIMEOUT_S,
                                               read_timeout=READ_TIMEOUT_S)
        self.bot = Bot(self.secrets.bot_token, base_url=f"{self.api_url}/bot",
                       request=self._request, get_updates_request=self._updates_request)

    @classmethod
    def generated_secrets(cls) -> dict[str, str]:
        return {"webhook_secret": pysecrets.token_urlsafe(32)}

    async def aclose(self) -> None:
        # Bot.shutdown() is a no-op unless Bot.initialize() ran, so close the pools directly.
        await self._request.shutdown()
        await self._updates_request.shutdown()
        await super().aclose()

    # -- inbound ---------------------------------------------------------------------------------

    def verify(self, raw: RawRequest) -> Verdict:
        expected = self.secrets.webhook_secret
        got = raw.header(SECRET_HEADER)
        if not expected:
            return Verdict.reject("no webhook secret configured")
        if got is None:
            return Verdict.reject("missing secret token header")
        if not hmac.compare_digest(got.encode(), expected.encode()):
            return Verdict.reject("secret token mismatch")
        return Verdict.accept()

    def parse(self, raw: RawRequest) -> list[Inbound]:
        data = load_json(raw)
        if not isinstance(data, dict):
            raise MalformedPayload("update is not a JSON object")
        return self.parse_update(data)

    def parse_update(self, data: dict[str, Any]) -> list[Inbound]:
        """One Update (webhook body or a ``get_updates`` item) to messages/actions."""
        if not isinstance(data.get("update_id"), int):
            raise MalformedPayload("update_id missing or not an integer")
        try:
            update = Update.de_json(data, None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedPayload(f"not a Telegram Update: {exc!r}") from exc
        dedupe_key = f"update:{update.update_id}"
        if update.message is not None:
            item = self._message(update.message, dedupe_key)
            return [item] if item else []
        if update.callback_query is not None:
            action = self._callback(update, dedupe_key)
            return [action] if action else []
        # edited_message, channel_post, my_chat_member, ...: nothing to answer.
        return []

    def _message(self, message: Message, dedupe_key: str) -> InboundMessage | None:
        sender = message.from_user
        if sender is None or sender.is_bot or sender.id == self.bot_id or message.text is None:
            return None  # anonymous admins, bots (our own echo included), stickers, photos...
        chat_type = message.chat.type
        is_direct = chat_type == "private"
        text = message.text
        if not is_direct:
            if chat_type not in ("group", "supergroup"):
                return None
            addressed, text = self._addressed(message)
            if not addressed:
                return None
        match = START_RE.match(text.strip()) if is_direct else None
        return InboundMessage(
            dedupe_key=dedupe_key,
            address=str(message.chat.id),
            thread=str(message.message_thread_id) if message.is_topic_message else None,
            sender_id=f"telegram:{sender.id}",  # ID-2
            sender_display=_display(sender),
            text=text,
            start_payload=match.group(1) if match else None,  # TG-2
            is_direct=is_direct,
            provider_message_id=str(message.message_id),
        )

    def _addressed(self, message: Message) -> tuple[bool, str]:
        """In groups the bot answers only when addressed; its @mention is cut from the text."""
        text = message.text or ""
        reply = message.reply_to_message
        addressed = bool(reply and reply.from_user and reply.from_user.id == self.bot_id)
        username = self.config.bot_username.lower().lstrip("@")
        if not username:
            return addressed, text
        handle = f"@{username}"
        cuts: list[tuple[int, int]] = []  # spans to remove, as Python indices
        for entity in message.entities:
            start, end = _span(text, entity)
            value = text[start:end].lower()
            if entity.type == MessageEntity.MENTION and value == handle:
                end += text[end : end + 1] == " "  # take one following space with it
                cuts.append((start, end))
            elif entity.type == MessageEntity.BOT_COMMAND and value.endswith(handle):
                cuts.append((end - len(handle), end))  # "/help@bot" -> "/help"
        for start, end in sorted(cuts, reverse=True):
            text = text[:start] + text[end:]
        return addressed or bool(cuts), text.strip() if cuts else text

    def _callback(self, update: Update, dedupe_key: str) -> InboundAction | None:
        query = update.callback_query
        assert query is not None
        message = query.message
        if query.data is None or message is None or query.from_user.is_bot:
            return None  # game callbacks and inline-mode messages are not ours
        return InboundAction(
            dedupe_key=dedupe_key,
            address=str(message.chat.id),
            thread=(str(message.message_thread_id)
                    if isinstance(message, Message) and message.is_topic_message else None),
            sender_id=f"telegram:{query.from_user.id}",
            sender_display=_display(query.from_user),
            token=query.data,  # APR-2: opaque, looked up server-side
            provider_message_id=str(message.message_id),
            action_id=query.id,
        )

    # -- render ----------------------------------------------------------------------------------

    def measure(self, text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    def text_payload(self, text: str, thread: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": text}
        if thread is not None and thread.isdigit():
            payload["message_thread_id"] = int(thread)
        return payload

    def with_chips(self, payload: dict[str, Any], chips: Sequence[str]) -> dict[str, Any]:
        # CHIP-2: a one-time reply keyboard; a tap sends the label as an ordinary message.
        rows = [list(chips[i : i + CHIPS_PER_ROW]) for i in range(0, len(chips), CHIPS_PER_ROW)]
        markup = ReplyKeyboardMarkup(rows, one_time_keyboard=True, resize_keyboard=True)
        return {**payload, "reply_markup": markup.to_dict()}

    def approval_fits(self, approval: ApprovalPrompt) -> bool:
        tokens = [approval.approve_token, approval.reject_token, approval.edit_token]
        return all(0 < len(tok.encode()) <= MAX_CALLBACK_DATA_BYTES for tok in tokens if tok is not None)

    def with_approval(self, payload: dict[str, Any], approval: ApprovalPrompt) -> dict[str, Any]:
        # APR-2: inline keyboard Approve / Reject / Edit; callback_data is the opaque token.
        row = [InlineKeyboardButton(APPROVE_LABEL, callback_data=approval.approve_token),
               InlineKeyboardButton(REJECT_LABEL, callback_data=approval.reject_token)]
        if approval.edit_token is not None:
            row.append(InlineKeyboardButton(EDIT_LABEL, callback_data=approval.edit_token))
        return {**payload, "reply_markup": InlineKeyboardMarkup([row]).to_dict()}

    # -- send ------------------------------------------------------------------------------------

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        params = {"chat_id": address, "text": payload["text"], "reply_markup": payload.get("reply_markup"),
                  "message_thread_id": payload.get("message_thread_id")}
        try:
            # What Bot.send_message calls (form encoding, error mapping), minus building PTB's Message
            # from the answer: only its message_id is kept, and that parse cost a third of a send's CPU.
            message = await self.bot._post("sendMessage", params)
        except TelegramError as exc:
            return classify(exc)
        return SendResult.sent(str(message["message_id"]))  # type: ignore[index]

    async def edit_approval(self, address: str, provider_message_id: str, outcome_text: str) -> SendResult:
        # editMessageText without reply_markup also removes the inline keyboard.
        try:
            await self.bot.edit_message_text(outcome_text, chat_id=address,
                                             message_id=int(provider_message_id))
        except BadRequest as exc:
            if "message is not modified" in str(exc).lower():
                return SendResult.sent(provider_message_id)
            return classify(exc)
        except TelegramError as exc:
            return classify(exc)
        return SendResult.sent(provider_message_id)

    async def acknowledge_action(self, action: InboundAction, answer: TapAnswer) -> None:
        if action.action_id is None:
            return
        text = answer.text
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            text = text[: MAX_CALLBACK_ANSWER - 1] + "…"  # a toast, not a message: shortened visibly
        try:
            await self.bot.answer_callback_query(action.action_id, text=text)
        except TelegramError as exc:
            # Queries expire after a short while; a late answer only leaves a spinner.
            log.warning("telegram: answerCallbackQuery failed: %s", exc)

    # -- onboarding ------------------------------------------------------------------------------

    async def get_me(self) -> User:
        """Validates the token (TG-1); the result carries the bot's username."""
        try:
            return await self.bot.get_me()
        except InvalidToken as exc:
            raise SetupError("Telegram rejected the bot token", code="invalid_token") from exc
        except TelegramError as exc:
            raise SetupError(f"Telegram getMe failed: {exc}", code="provider_unreachable") from exc

    async def set_webhook(self, url: str, secret_token: str,
                          allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> bool:
        return await self.bot.set_webhook(url, secret_token=secret_token,
                                          allowed_updates=list(allowed_updates))

    async def delete_webhook(self, drop_pending_updates: bool = False) -> bool:
        return await self.bot.delete_webhook(drop_pending_updates=drop_pending_updates)

    async def get_webhook_info(self) -> dict[str, Any]:
        info = await self.bot.get_webhook_info()
        return json.loads(info.to_json())

    # ``timeout`` is the Bot API's long-poll length, not a deadline for this call.
    async def get_updates(self, offset: int | None = None,
                          timeout: int = 0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """One long poll; returns Update dicts (pass each to ``parse_update``). The next offset
        is the last ``update_id`` + 1."""
        updates = await self.bot.get_updates(offset=offset, timeout=timeout,
                                             allowed_updates=list(ALLOWED_UPDATES))
        # PTB has parsed them; its JSON form parses back identically.
        return [json.loads(update.to_json()) for update in updates]

    def pulls(self) -> bool:
        return self.config.mode == "polling"

    async def pull_forever(self, deliver: Deliver, *, long_poll_s: int = LONG_POLL_S) -> None:
        """Long polling: each batch is stored before the next getUpdates confirms it (the offset)."""
        offset: int | None = None
        while True:
            updates = await self.get_updates(offset=offset, timeout=long_poll_s)
            for update in updates:
                offset = int(update["update_id"]) + 1
                try:
                    items = self.parse_update(update)
                except MalformedPayload as exc:
                    log.warning("telegram: skipping a malformed update: %s", exc)
                    continue
                await deliver(items)

    async def setup(self, *, webhook_url: str) -> SetupInfo:
        """TG-1: validate the token, then register the webhook, or fall back to polling when
        Telegram could not reach ``webhook_url``."""
        me = await self.get_me()
        username = me.username or ""
        details = {"bot_id": me.id, "can_join_groups": bool(me.can_join_groups),
                   "can_read_all_group_messages": bool(me.can_read_all_group_messages)}
        base = f"https://t.me/{username}"
        try:
            if webhook_possible(webhook_url):
                if not self.secrets.webhook_secret:
                    raise SetupError("a webhook secret is required", code="missing_secret")
                await self.set_webhook(webhook_url, self.secrets.webhook_secret)
                return SetupInfo(mode="webhook", webhook_url=webhook_url, bot_username=username,
                                 deep_link_base=base, details=details,
                                 steps=[f"Webhook registered; message @{username} to talk to it."])
            await self.delete_webhook()  # getUpdates refuses to work while a webhook is set
        except TelegramError as exc:
            raise SetupError(f"Telegram refused the webhook: {exc}", code="webhook_rejected") from exc
        return SetupInfo(mode="polling", bot_username=username, deep_link_base=base, details=details,
                         steps=["Telegram only calls public HTTPS URLs on ports 443, 80, 88 or 8443; "
                                f"{webhook_url} is not one, so the server polls for updates instead.",
                                f"Message @{username} to talk to it."])

    async def teardown(self) -> None:
        try:
            await self.delete_webhook()
        except TelegramError as exc:
            log.warning("telegram: deleteWebhook failed during teardown: %s", exc)


def deep_link(username: str, token: str) -> str:
    """TG-2: ``https://t.me/<bot>?start=<token>``; the token must be 1-64 of ``A-Za-z0-9_-``."""
    if not DEEP_LINK_PAYLOAD_RE.match(token):
        raise ValueError("deep-link payload must be 1-64 characters of A-Z a-z 0-9 _ -")
    return f"https://t.me/{username.lstrip('@')}?start={token}"


def webhook_possible(public_url: str) -> bool:
    """Whether Telegram could deliver to this URL: HTTPS, a supported port, a public host."""
    try:
        port = urlsplit(public_url).port or 443
    except ValueError:
        return False
    return port in WEBHOOK_PORTS and publicly_reachable(public_url)


def _span(text: str, entity: MessageEntity) -> tuple[int, int]:
    """An entity's Python slice: Telegram counts offsets in UTF-16 code units."""
    units = text.encode("utf-16-le")
    begin, end = entity.offset * 2, (entity.offset + entity.length) * 2
    start = len(units[:begin].decode("utf-16-le", errors="ignore"))
    return start, start + len(units[begin:end].decode("utf-16-le", errors="ignore"))


def _display(user: User) -> str:
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))
