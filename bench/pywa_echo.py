"""The baseline of bench/whatsapp.py: a pywa echo bot in its own process.

    .venv/bin/python -m bench.pywa_echo --port P --api-url http://127.0.0.1:F/v23.0

pywa's documented shape for one's own web server: ``WhatsApp(phone_id=..., token=..., server=<a FastAPI app>,
verify_token=..., app_secret=..., validate_updates=True)`` from ``pywa_async`` (its asyncio client, the
counterpart of Bolt's AsyncApp), served by uvicorn. pywa registers ``GET /`` (Meta's verification handshake)
and ``POST /`` (updates) on the app; each post's ``X-Hub-Signature-256`` is checked against the app secret
(HMAC-SHA256 of the raw body, as the product does) before the post is answered, and the update is handled in
a FastAPI background task after the 200. Its ``on_message`` handler answers "You said: <text>" with
``reply_text`` (a Graph ``POST /{phone_id}/messages``), through an httpx client whose base URL is pointed
at ``--api-url``: pywa fixes ``https://graph.facebook.com/v{api_version}`` on the session it is given and
offers no option for another host, so the session's ``base_url`` is set again after the client is built.
That session is httpx's default, as pywa makes it (``--max-connections N`` sizes its pool instead). The update
is handled after the 200 while uvicorn already reads the connection's next post, so nothing bounds the
handlers in flight: under load they queue in httpx's pool, whose request assignment (httpcore) costs CPU in
proportion to the queue, which dominated pywa's CPU per message in bench/whatsapp.py (py-spy).
pywa 4.5 reads each sender's business-scoped user id (``contacts[].user_id``, which Meta now sends), so the
bench's webhooks carry one; replies go to the ``wa_id`` (``user_identifier_priority``), as the product's do.
``GET /health`` answers 200 once the server listens.
"""

from __future__ import annotations

import argparse
import logging

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pywa_async import WhatsApp, filters, types
from pywa_async.utils import UserIdentifier

from tests.fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, GRAPH_VERSION, PHONE_NUMBER_ID

VERIFY_TOKEN = "pywa-bench-verify-token"


def echo_app(api_url: str, phone_id: str, token: str, app_secret: str, max_connections: int | None) -> FastAPI:
    server = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # By default what pywa makes when given none (httpx's defaults: 5 s timeout, 100 connections, 20 kept alive).
    session = httpx.AsyncClient() if max_connections is None else httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections))
    wa = WhatsApp(phone_id=phone_id, token=token, session=session, server=server, verify_token=VERIFY_TOKEN,
                  app_secret=app_secret, validate_updates=True, api_version=GRAPH_VERSION.removeprefix("v"),
                  # Reply to the wa_id, the address the product answers (pywa prefers the BSUID by default).
                  user_identifier_priority=(UserIdentifier.WA_ID, UserIdentifier.BSUID, UserIdentifier.PARENT_BSUID))
    session.base_url = api_url  # the fake Graph, where pywa put https://graph.facebook.com/v23.0

    @wa.on_message(filters.text)
    async def echo(_: WhatsApp, message: types.Message) -> None:
        await message.reply_text(f"You said: {message.text}")

    @server.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pywa_echo", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True, help="Graph with its version, e.g. http://127.0.0.1:PORT/v23.0")
    parser.add_argument("--phone-id", default=PHONE_NUMBER_ID)
    parser.add_argument("--token", default=ACCESS_TOKEN)
    parser.add_argument("--app-secret", default=APP_SECRET)
    parser.add_argument("--max-connections", type=int, help="the Graph client's pool (default: httpx's, as pywa's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(echo_app(args.api_url, args.phone_id, args.token, args.app_secret, args.max_connections),
                host="127.0.0.1",
                port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
