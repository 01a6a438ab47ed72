"""The baseline of bench/slack.py: a Slack Bolt for Python echo app in its own process.

    .venv/bin/python -m bench.slack_bolt_echo --port P --api-url http://127.0.0.1:F/api/ --signing-secret S

Bolt's documented shape for an ASGI server: an ``AsyncApp`` behind slack_bolt's Starlette adapter
(``AsyncSlackRequestHandler``) at ``POST /slack/events``, served by uvicorn. Its ``message`` listener
answers "You said: <text>" in the event's channel with chat.postMessage (``say``), through an
``AsyncWebClient`` pointed at the fake Slack. Bolt acknowledges each event at once and runs the listener
afterwards (``process_before_response`` is off, as for any long-running server). ``GET /health`` answers
200 once the server listens.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncSay
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET


def echo_app(api_url: str, signing_secret: str, token: str) -> Starlette:
    # The token rides on the client: Bolt takes it from there (given both, it warns that `token` goes unused).
    bolt = AsyncApp(signing_secret=signing_secret, client=AsyncWebClient(token=token, base_url=api_url),
                    logger=logging.getLogger("bench.slack_bolt_echo"))

    @bolt.event("message")
    async def echo(event: dict[str, Any], say: AsyncSay) -> None:
        await say(f"You said: {event.get('text', '')}")

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slack_bolt_echo", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True, help="the Web API base, e.g. http://127.0.0.1:PORT/api/")
    parser.add_argument("--signing-secret", default=SIGNING_SECRET)
    parser.add_argument("--token", default=BOT_TOKEN, help="the bot token (xoxb-...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(echo_app(args.api_url, args.signing_secret, args.token), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
