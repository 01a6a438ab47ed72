"""A baseline of bench/webhook.py: the ceiling of the HTTP stack, in its own process.

    .venv/bin/python -m bench.bare_endpoint --port P

``POST /hook`` answers 200 ``{"ok":true}`` at once without reading the update; ``GET /health`` answers 200.
Starlette on uvicorn, as the python-telegram-bot baseline (bench/ptb_echo.py) is served.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


def bare_app() -> Starlette:
    async def ok(_: Request) -> Response:
        return Response('{"ok":true}', media_type="application/json")

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/hook", ok, methods=["POST"]), Route("/health", health, methods=["GET"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_endpoint", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(bare_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                lifespan="off")


if __name__ == "__main__":
    main()
