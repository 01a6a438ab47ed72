"""A baseline of bench/webhook.py: python-telegram-bot's echo bot, fed by a webhook, in its own process.

    .venv/bin/python -m bench.ptb_echo --port P --api-url http://127.0.0.1:F --concurrent-updates 16

The shape of python-telegram-bot's custom-webhook example (examples/customwebhookbot/starlettebot.py): an
``Application`` built with ``updater(None)``, a Starlette route that puts each posted update on
``application.update_queue``, and uvicorn serving it between ``application.start()`` and ``application.stop()``.
Its handler echoes every text message with ``reply_text`` through the Bot API at ``--api-url`` (the fake's
root: requests go to ``{api-url}/bot{token}/{method}``). ``POST /hook`` takes the updates (no secret token
is checked; setWebhook is not called, as the fake takes only HTTPS webhook URLs); ``GET /health`` answers 200
once the server listens.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from tests.fakes.telegram import FAKE_TOKEN


def echo_application(api_url: str, token: str, concurrent_updates: int) -> Application[Any, Any, Any, Any, Any, Any]:
    application = (Application.builder().token(token).base_url(f"{api_url}/bot").updater(None)
                   .concurrent_updates(concurrent_updates).build())

    async def echo(update: Update, _: Any) -> None:
        assert update.message is not None
        await update.message.reply_text(update.message.text or "")

    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


def webhook_app(application: Application[Any, Any, Any, Any, Any, Any]) -> Starlette:
    async def hook(request: Request) -> Response:
        await application.update_queue.put(Update.de_json(await request.json(), application.bot))
        return Response()

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/health", health, methods=["GET"])])


async def serve(port: int, api_url: str, token: str, concurrent_updates: int) -> None:
    application = echo_application(api_url, token, concurrent_updates)
    server = uvicorn.Server(uvicorn.Config(webhook_app(application), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    async with application:  # as the example: start the bot, serve until SIGTERM/SIGINT, stop the bot
        await application.start()
        await server.serve()
        await application.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ptb_echo", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True, help="the Bot API's root, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--concurrent-updates", type=int, default=1, help="updates handled at once")
    parser.add_argument("--token", default=FAKE_TOKEN)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.port, args.api_url, args.token, args.concurrent_updates))


if __name__ == "__main__":
    main()
