"""A fake Meta Graph API for the WhatsApp Cloud API (reference/whatsapp.md), and the webhooks Meta posts.

    async with run_fake_graph() as graph:
        channel = WhatsAppChannel({"phone_number_id": PHONE_NUMBER_ID}, {...}, api_url=graph.url)
        graph.rate_limit_next()
        ...
        assert graph.sent[0]["to"] == USER_WA_ID

It serves, on 127.0.0.1 (uvicorn in a background thread, like the Telegram fake) under a version prefix
(``graph.url`` ends in ``/v23.0``): ``GET /{phone_number_id}?fields=...`` (the number's profile) and
``POST /{phone_number_id}/messages`` (text and reply-button messages, and mark-as-read), checking the
bearer token and Meta's limits, and answering failures in Graph's error envelope. Webhook builders
(``text_message``, ``button_reply``, ``status``, ``batch``) give Meta's shapes; ``body`` serialises one as
Meta does (ASCII-escaped) and ``sign`` gives its ``X-Hub-Signature-256`` header. For a benchmark that runs
it in its own process (``python -m tests.fakes.whatsapp --port P --latency-ms L``), ``GET /_bench/sent?since=N``
answers the messages sent (text and interactive, not read marks) from the N-th on.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serve import off_loop, serve_here, serve_in_thread

GRAPH_VERSION = "v23.0"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_PHONE_NUMBER = "+1 555-010-0199"  # as Graph shows it; webhooks and wa.me write the digits
BUSINESS_NUMBER = "15550100199"
VERIFIED_NAME = "Ingram Test"
ACCESS_TOKEN = "EAAGfakeWhatsAppSystemUserToken0123456789"
APP_SECRET = "fa4e5ec12e7a4d0c9b1f3a5e7c9d2b4f"
USER_WA_ID = "306912345678"
USER_NAME = "Dana Vex"
OTHER_WA_ID = "447700900123"
OTHER_NAME = "Sam Roe"

_MAX_TEXT = 4096
_MAX_BODY = 1024
_MAX_TITLE = 20
_MAX_ID = 256
_ids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.HBgL{next(_ids):012d}FQIAERgS"


@dataclass
class _Failure:
    status: int
    code: int
    title: str
    details: str
    retry_after: int | None = None


class GraphError(Exception):
    def __init__(self, status: int, code: int, title: str, details: str = "", *, subcode: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(title)
        self.status, self.code, self.title, self.details = status, code, title, details
        self.subcode, self.retry_after = subcode, retry_after

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"message": f"(#{self.code}) {self.title}", "type": "OAuthException",
                                 "code": self.code, "fbtrace_id": "AbCdEfGhIjK"}
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        headers = {"retry-after": str(self.retry_after)} if self.retry_after else None
        return JSONResponse({"error": error}, status_code=self.status, headers=headers)


class FakeGraph:
    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.url = ""  # set once serving: the channel's api_url (IC_GRAPH_API_URL)
        self.tokens = {ACCESS_TOKEN}
        self.numbers: dict[str, dict[str, Any]] = {PHONE_NUMBER_ID: {
            "id": PHONE_NUMBER_ID, "display_phone_number": DISPLAY_PHONE_NUMBER, "verified_name": VERIFIED_NAME,
            "code_verification_status": "NOT_VERIFIED", "quality_rating": "GREEN", "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"}}}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, params or body)
        self.sent: list[dict[str, Any]] = []  # each accepted message, with its "wamid"
        self.read_marks: list[str] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/{version}/{number_id}", self._number, methods=["GET"]),
            Route("/{version}/{number_id}/messages", self._messages, methods=["POST"]),
        ])

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(self, code: int, title: str, details: str = "", *, status: int = 400, times: int = 1,
                  retry_after: int | None = None) -> None:
        """The next sends fail with this Graph error (sends only: the number lookup is not affected)."""
        with self._lock:
            self._failures.extend(_Failure(status, code, title, details, retry_after) for _ in range(times))

    def rate_limit_next(self, *, times: int = 1, retry_after: int | None = None) -> None:
        self.fail_next(130429, "Rate limit hit", "Cloud API message throughput has been reached.", status=429,
                       times=times, retry_after=retry_after)

    def block_next(self, times: int = 1) -> None:
        self.fail_next(131026, "Message undeliverable", "Message could not be delivered: the recipient may not "
                       "be on WhatsApp or may have an old version.", times=times)

    def server_error_next(self, times: int = 1) -> None:
        self.fail_next(1, "An unknown error has occurred.", status=500, times=times)

    def window_closed_next(self, times: int = 1) -> None:
        self.fail_next(131047, "Re-engagement message", "Message failed to send because more than 24 hours have "
                       "passed since the customer last replied to this number.", times=times)

    def expire_token(self, token: str = ACCESS_TOKEN) -> None:
        self.tokens.discard(token)

    def sent_to(self, wa_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("to") == wa_id]

    # -- HTTP ------------------------------------------------------------------------------------

    async def _number(self, request: Request) -> Response:
        number_id = request.path_params["number_id"]
        self.calls.append(("GET", request.url.path, dict(request.query_params)))
        try:
            number = await self._authorised(request, number_id)
        except GraphError as exc:
            return exc.response()
        fields = [f for f in request.query_params.get("fields", "").split(",") if f]
        return JSONResponse({**{f: number[f] for f in fields if f in number}, "id": number_id})

    async def _messages(self, request: Request) -> Response:
        number_id = request.path_params["number_id"]
        try:
            body = json.loads(await request.body())
        except ValueError:
            return GraphError(400, 100, "Invalid parameter", "Request body is not JSON").response()
        self.calls.append(("POST", request.url.path, body))
        try:
            await self._authorised(request, number_id)
            with self._lock:
                failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                raise GraphError(failure.status, failure.code, failure.title, failure.details,
                                 retry_after=failure.retry_after)
            return JSONResponse(self._accept(body))
        except GraphError as exc:
            return exc.response()

    async def _authorised(self, request: Request, number_id: str) -> dict[str, Any]:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            raise GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")
        number = self.numbers.get(number_id)
        if number is None:
            raise GraphError(400, 100, f"Unsupported get request. Object with ID '{number_id}' does not exist, "
                             "cannot be loaded due to missing permissions, or does not support this operation",
                             subcode=33)
        return number

    def _accept(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "Invalid parameter", "messaging_product must be whatsapp")
        if body.get("status") == "read":  # mark as read
            self.read_marks.append(_required(body, "message_id"))
            return {"success": True}
        to = str(_required(body, "to"))
        if not to.isdigit():
            raise GraphError(400, 131009, "Parameter value is not valid", f"invalid recipient {to!r}")
        kind = _required(body, "type")
        if kind == "text":
            text = str(_required(body.get("text") or {}, "body"))
            _check(0 < len(text) <= _MAX_TEXT, f"text.body must be 1 to {_MAX_TEXT} characters")
        elif kind == "interactive":
            _check_buttons(body.get("interactive"))
        else:
            raise GraphError(400, 131009, "Parameter value is not valid", f"type {kind!r} is not served by the fake")
        wamid = new_wamid()
        self.sent.append({**body, "wamid": wamid, "received_at": time.monotonic()})
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}]}


def _required(container: dict[str, Any], name: str) -> Any:
    if container.get(name) in (None, ""):
        raise GraphError(400, 131008, "Required parameter is missing", f"parameter {name} is required")
    return container[name]


def _check(ok: bool, details: str) -> None:
    if not ok:
        raise GraphError(400, 131009, "Parameter value is not valid", details)


def _check_buttons(interactive: Any) -> None:
    """Meta's limits on reply buttons (interactive-reply-buttons-messages)."""
    _check(isinstance(interactive, dict) and interactive.get("type") == "button", "interactive.type must be button")
    text = str(((interactive.get("body") or {}).get("text")) or "")
    _check(0 < len(text) <= _MAX_BODY, f"interactive.body.text must be 1 to {_MAX_BODY} characters")
    buttons = (interactive.get("action") or {}).get("buttons") or []
    _check(1 <= len(buttons) <= 3, "1 to 3 buttons")
    ids = [str(b.get("reply", {}).get("id") or "") for b in buttons]
    titles = [str(b.get("reply", {}).get("title") or "") for b in buttons]
    _check(all(b.get("type") == "reply" for b in buttons), "buttons must be of type reply")
    _check(all(0 < len(t) <= _MAX_TITLE for t in titles), f"button titles must be 1 to {_MAX_TITLE} characters")
    _check(all(0 < len(i) <= _MAX_ID and i == i.strip() for i in ids), "button ids must be 1 to 256 characters")
    _check(len(set(titles)) == len(titles) and len(set(ids)) == len(ids), "button titles and ids must be unique")


# -- serving -----------------------------------------------------------------------------------------

@contextmanager
def serve_fake_graph(latency_s: float = 0.0) -> Iterator[FakeGraph]:
    """Serve a ``FakeGraph`` on a free 127.0.0.1 port (in a thread) for the duration of the block."""
    fake = FakeGraph(latency_s)
    with serve_in_thread(fake.app, "fake-graph") as url:
        fake.url = f"{url}/{GRAPH_VERSION}"
        yield fake


@asynccontextmanager
async def run_fake_graph(latency_s: float = 0.0) -> AsyncIterator[FakeGraph]:
    """The same, for async tests (start and stop happen off the event loop)."""
    async with off_loop(serve_fake_graph(latency_s)) as fake:
        yield fake


# -- webhooks as Meta posts them ----------------------------------------------------------------------

def envelope(value: dict[str, Any], *, field: str = "messages", phone_number_id: str = PHONE_NUMBER_ID,
             display_number: str = BUSINESS_NUMBER) -> dict[str, Any]:
    """One entry with one change; ``value`` gets the messaging product and the number's metadata."""
    full = {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_number, "phone_number_id": phone_number_id}, **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": full, "field": field}]}]}


def batch(*payloads: dict[str, Any]) -> dict[str, Any]:
    """Several webhook payloads as one POST with several entries (Meta batches)."""
    return {"object": "whatsapp_business_account", "entry": [e for p in payloads for e in p["entry"]]}


def _inbound(message: dict[str, Any], wa_id: str, name: str, wamid: str | None, **meta: Any) -> dict[str, Any]:
    full = {"from": wa_id, "id": wamid or new_wamid(), "timestamp": str(int(time.time())), **message}
    return envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [full]}, **meta)


def text_message(text: str, *, wa_id: str = USER_WA_ID, name: str = USER_NAME, wamid: str | None = None,
                 **meta: Any) -> dict[str, Any]:
    return _inbound({"type": "text", "text": {"body": text}}, wa_id, name, wamid, **meta)


def button_reply(button_id: str, title: str, *, context_id: str, wa_id: str = USER_WA_ID, name: str = USER_NAME,
                 wamid: str | None = None, **meta: Any) -> dict[str, Any]:
    """A tap on a reply button of the message ``context_id`` (the wamid the send returned)."""
    message = {"context": {"from": BUSINESS_NUMBER, "id": context_id}, "type": "interactive",
               "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}}
    return _inbound(message, wa_id, name, wamid, **meta)


def status(wamid: str, state: str, *, recipient: str = USER_WA_ID, error: tuple[int, str, str] | None = None,
           **meta: Any) -> dict[str, Any]:
    """A delivery status (sent, delivered, read, failed) of a message we sent; ``error`` = (code, title, details)."""
    found: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(int(time.time())),
                             "recipient_id": recipient}
    if error is not None:
        code, title, details = error
        found["errors"] = [{"code": code, "title": title, "message": title, "error_data": {"details": details}}]
    return envelope({"statuses": [found]}, **meta)


def body(payload: dict[str, Any]) -> bytes:
    """The bytes Meta posts: compact JSON with non-ASCII escaped (so a re-dump would change them)."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def sign(raw: bytes, app_secret: str = APP_SECRET) -> dict[str, str]:
    """``X-Hub-Signature-256`` over the raw body, as Meta signs every POST."""
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()}


# -- a benchmark's fake, in its own process ------------------------------------------------------------

def serve_forever(port: int, latency_s: float = 0.0) -> None:
    """Serve in this process until it is stopped, with ``GET /_bench/sent?since=N``: the accepted messages
    from the N-th on (read marks are not messages: only their count), each with ``received_at`` =
    time.monotonic(), one clock for every process on Linux, so a benchmark can subtract its own readings."""
    fake = FakeGraph(latency_s)

    async def bench_sent(request: Request) -> Response:
        since = max(0, int(request.query_params.get("since") or 0))
        return JSONResponse({"count": len(fake.sent), "sent": fake.sent[since:], "read_marks": len(fake.read_marks)})

    # First: ``/{version}/{number_id}`` would take ``/_bench/sent`` for a number lookup.
    fake.app.router.routes.insert(0, Route("/_bench/sent", bench_sent, methods=["GET"]))
    serve_here(fake.app, port, f"fake Graph API (under /{GRAPH_VERSION})",
               on_url=lambda url: setattr(fake, "url", f"{url}/{GRAPH_VERSION}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.whatsapp", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every Graph API answer")
    args = parser.parse_args(argv)
    serve_forever(args.port, args.latency_ms / 1000)


if __name__ == "__main__":
    main()
