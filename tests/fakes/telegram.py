"""A fake Telegram Bot API server (reference/telegram.md), for python-telegram-bot and raw HTTP.

    async with run_fake_telegram() as tg:
        channel = TelegramChannel({}, {"bot_token": FAKE_TOKEN}, api_url=tg.url)
        tg.rate_limit_next("sendMessage", retry_after=7)
        ...
        assert tg.calls_to("sendMessage")[0]["chat_id"] == 5551234

It serves ``POST|GET /bot{token}/{method}`` on 127.0.0.1 (uvicorn in a background thread, so its
latency does not block the test's event loop). Bodies are parsed the way Telegram does: form fields
(PTB's default, with JSON inside for objects), JSON bodies, query strings or multipart. For a benchmark
that runs it in its own process (``python -m tests.fakes.telegram --port N --latency-ms M``),
``GET /_bench/sent?since=N`` answers what sendMessage received from the N-th on, and the webhook set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serve import off_loop, serve_here, serve_in_thread

FAKE_TOKEN = "123456789:AAE-fake_token-for_tests"
FAKE_BOT_ID = 123456789
FAKE_BOT_USERNAME = "ingram_test_bot"

# Which form fields carry JSON / integers / booleans (PTB JSON-encodes non-strings; strings are raw).
_JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "caption_entities", "reply_parameters",
                "link_preview_options"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "message_thread_id",
               "max_connections", "cache_time", "reply_to_message_id"}
_BOOL_FIELDS = {"drop_pending_updates", "show_alert", "disable_notification", "protect_content"}
_MAX_TEXT = 4096
_MAX_CALLBACK_DATA = 64


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.status)


def bot_user(token: str, username: str = FAKE_BOT_USERNAME) -> dict[str, Any]:
    return {"id": int(token.split(":", 1)[0]), "is_bot": True, "first_name": "Ingram Test",
            "username": username, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}


@dataclass
class _Failure:
    status: int
    description: str
    parameters: dict[str, Any] | None = None


class FakeTelegram:
    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.url = ""  # set once serving: use it as the channel's api_url
        self.bots: dict[str, dict[str, Any]] = {FAKE_TOKEN: bot_user(FAKE_TOKEN)}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent_messages: list[dict[str, Any]] = []  # what each sendMessage asked for, decoded
        self.messages: dict[tuple[int | str, int], dict[str, Any]] = {}  # as Telegram holds them
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {"url": ""}
        self._updates: list[dict[str, Any]] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._held: set[str] = set()
        self._released = threading.Event()
        self.holding = 0  # requests waiting for release()
        self._lock = threading.Lock()
        self._next_message_id = 1
        self._next_update_id = 700000
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"]),
                                     Route("/_bench/sent", self._bench_sent, methods=["GET"])])

    # -- test controls ---------------------------------------------------------------------------

    def add_bot(self, token: str, username: str) -> None:
        self.bots[token] = bot_user(token, username)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates (an ``update_id`` is assigned when missing)."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": self._next_update_id, **update}
            self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
            self._updates.append(update)
        return update

    def fail_next(self, method: str, status: int, description: str, *, times: int = 1,
                  parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            queue.extend(_Failure(status, description, parameters) for _ in range(times))

    def rate_limit_next(self, method: str, retry_after: int = 7, times: int = 1) -> None:
        self.fail_next(method, 429, f"Too Many Requests: retry after {retry_after}", times=times,
                       parameters={"retry_after": retry_after})

    def block_next(self, method: str, times: int = 1) -> None:
        self.fail_next(method, 403, "Forbidden: bot was blocked by the user", times=times)

    def server_error_next(self, method: str, times: int = 1) -> None:
        self.fail_next(method, 500, "Internal Server Error", times=times)

    def redirect_loop_next(self, method: str, times: int = 1) -> None:
        """Answer the next calls with a redirect to themselves (a misconfigured proxy): the client
        gives up with an error that quotes the request URL, bot token included."""
        self.fail_next(method, 307, "redirect loop", times=times)

    def hold(self, method: str) -> None:
        """Answer no call of ``method`` until ``release()``: they pile up, then all end together."""
        self._released.clear()
        self._held.add(method)

    def release(self) -> None:
        self._held.clear()
        self._released.set()

    async def _bench_sent(self, request: Request) -> Response:
        """sendMessage's record from the ``since``-th on (``received_at`` is time.monotonic(), one clock for every
        process on Linux) and the webhook as set (its secret token included), for a benchmark in another process."""
        since = max(0, int(request.query_params.get("since") or 0))
        return JSONResponse({"count": len(self.sent_messages), "sent": self.sent_messages[since:],
                             "webhook": self.webhook})

    # -- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if method in self._held:
            with self._lock:
                self.holding += 1
            await asyncio.to_thread(self._released.wait)
            with self._lock:
                self.holding -= 1
        if token not in self.bots:
            return ApiError(401, "Unauthorized").response()
        try:
            params = await _params(request)
        except ValueError as exc:
            return ApiError(400, f"Bad Request: can't parse request: {exc}").response()
        self.calls.append((method, params))
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else None
        if failure and failure.status == 307:
            return Response(status_code=307, headers={"location": str(request.url)})
        if failure:
            return ApiError(failure.status, failure.description, failure.parameters).response()
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return ApiError(404, "Not Found").response()
        try:
            result = await handler(token, params)
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"ok": True, "result": result})

    # -- methods ---------------------------------------------------------------------------------

    async def _m_getMe(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.bots[token]

    async def _m_sendMessage(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _required(params, "chat_id")
        text = str(params.get("text") or "")
        _check_text(text)
        markup = params.get("reply_markup")
        _check_markup(markup)
        with self._lock:
            message_id = self._next_message_id
            self._next_message_id += 1
        message: dict[str, Any] = {"message_id": message_id, "from": _public(self.bots[token]),
                                   "chat": _chat(chat_id), "date": int(time.time()), "text": text}
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        if markup and "inline_keyboard" in markup:  # Telegram echoes only inline keyboards
            message["reply_markup"] = markup
        self.messages[(chat_id, message_id)] = message
        self.sent_messages.append({"chat_id": chat_id, "message_id": message_id, "text": text,
                                   "reply_markup": markup, "received_at": time.monotonic(),
                                   "message_thread_id": params.get("message_thread_id")})
        return message

    async def _m_editMessageText(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(params)
        text = str(params.get("text") or "")
        _check_text(text)
        markup = params.get("reply_markup")
        _check_markup(markup)
        if message["text"] == text and message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content "
                                "and reply markup are exactly the same as a current content and reply "
                                "markup of the message")
        message["text"] = text
        message["edit_date"] = int(time.time())
        _set_markup(message, markup)
        return message

    async def _m_editMessageReplyMarkup(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(params)
        markup = params.get("reply_markup")
        _check_markup(markup)
        if message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified")
        _set_markup(message, markup)
        return message

    async def _m_answerCallbackQuery(self, token: str, params: dict[str, Any]) -> bool:
        _required(params, "callback_query_id")
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(params)
        return True

    async def _m_setWebhook(self, token: str, params: dict[str, Any]) -> bool:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _secret_ok(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates"),
                        "max_connections": params.get("max_connections", 40)}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_deleteWebhook(self, token: str, params: dict[str, Any]) -> bool:
        self.webhook = {"url": ""}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.webhook["url"], "has_custom_certificate": False,
                                "pending_update_count": len(self._updates)}
        if self.webhook["url"]:
            info["max_connections"] = self.webhook.get("max_connections") or 40
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _m_getUpdates(self, token: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook["url"]:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            with self._lock:
                if offset:  # an offset confirms every earlier update: Telegram forgets them
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = self._updates[:limit]
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.02)

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (_required(params, "chat_id"), int(_required(params, "message_id")))
        message = self.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message


@contextmanager
def serve_fake_telegram(latency_s: float = 0.0) -> Iterator[FakeTelegram]:
    """Serve a ``FakeTelegram`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeTelegram(latency_s)
    with serve_in_thread(fake.app, "fake-telegram") as url:
        fake.url = url
        yield fake


def serve_forever(port: int, latency_s: float = 0.0) -> None:
    """Serve in this process until it is stopped (for a benchmark that runs the fake on its own)."""
    fake = FakeTelegram(latency_s)
    serve_here(fake.app, port, "fake Telegram Bot API", on_url=lambda url: setattr(fake, "url", url))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.telegram", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every Bot API answer")
    args = parser.parse_args(argv)
    serve_forever(args.port, args.latency_ms / 1000)


@asynccontextmanager
async def run_fake_telegram(latency_s: float = 0.0) -> AsyncIterator[FakeTelegram]:
    """The same, for async tests (start and stop happen off the event loop)."""
    async with off_loop(serve_fake_telegram(latency_s)) as fake:
        yield fake


# -- update builders (real shapes, reference/telegram.md) ------------------------------------------

def private_message(text: str, *, user_id: int = 5551234, first_name: str = "Dana",
                    message_id: int = 11, update_id: int | None = None) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
    message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "from": user,
                               "chat": {"id": user_id, "type": "private", "first_name": first_name},
                               "text": text}
    if text.startswith("/"):
        command = text.split(" ", 1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    update: dict[str, Any] = {"message": message}
    if update_id is not None:
        update["update_id"] = update_id
    return update


def callback_query(data: str, *, user_id: int = 5551234, message_id: int = 12,
                   query_id: str = "4382bfdwdsb323b2d9", update_id: int | None = None) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Dana"}
    message = {"message_id": message_id, "date": int(time.time()), "text": "Approve?",
               "chat": {"id": user_id, "type": "private"}, "from": _public(bot_user(FAKE_TOKEN))}
    update: dict[str, Any] = {"callback_query": {"id": query_id, "chat_instance": "-81234567890",
                                                 "from": user, "data": data, "message": message}}
    if update_id is not None:
        update["update_id"] = update_id
    return update


# -- helpers ---------------------------------------------------------------------------------------

async def _params(request: Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and content_type.startswith("application/json"):
        raw.update(json.loads(body))
    elif body and content_type.startswith("multipart/form-data"):
        form = await request.form()
        raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif body:
        raw.update(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    return {key: _decode(key, value) for key, value in raw.items()}


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        return json.loads(value)
    if key in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # chat_id may be "@channelusername"
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def _required(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise ApiError(400, f"Bad Request: {name} is empty")
    return params[name]


def _check_text(text: str) -> None:
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text.encode("utf-16-le")) // 2 > _MAX_TEXT:
        raise ApiError(400, "Bad Request: message is too long")


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= _MAX_CALLBACK_DATA:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _set_markup(message: dict[str, Any], markup: Any) -> None:
    if markup and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)  # omitting it removes the inline keyboard


def _secret_ok(secret: str) -> bool:
    return 1 <= len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, int) and chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Dana"}
    if isinstance(chat_id, int):
        return {"id": chat_id, "type": "supergroup", "title": "Test group"}
    return {"id": -1001234567890, "type": "channel", "title": str(chat_id)}


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user[k] for k in ("id", "is_bot", "first_name", "username")}


if __name__ == "__main__":
    main()
