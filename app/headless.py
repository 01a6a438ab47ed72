"""``python -m app.headless --port 8001``: the product without its console, for extra API and webhook nodes.

It serves what ``./run.sh`` serves apart from the console pages: the webhook receivers, ``/v1``, the
OAuth routes and MCP, behind the same guards, with the same per-process work (migrations under a lock, the
run workers, the outbox and, under the leader lock, the scheduler and pull receivers). It starts in a few
seconds because there is no console bundle to build, so it suits nodes behind a load balancer next to one
``./run.sh`` that serves the console, and the chaos test (tests/chaos), which kills and restarts it.
Settings come from the same ``IC_*`` variables (``IC_DATABASE_URL`` points every node at one PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp

from app.api import build_api, limits, security_headers, webhooks
from app.serving import product_lifespan
from channels.redact import install_log_redaction


async def _no_console(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"code": "not_found", "message": "this node serves no console"}}, status_code=404)


def headless_app() -> ASGIApp:
    """The same layers Reflex stacks (app/app.py's ``api_transformer``), around a 404 instead of the console."""
    api = build_api()
    api.add_route("/{path:path}", _no_console)
    inner: ASGIApp = api
    front = webhooks.front()
    front.mount("", inner)
    guarded = limits.guard(security_headers.wrap(front))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with product_lifespan():
            yield

    return Starlette(routes=[Mount("", app=guarded)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.headless", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    import uvicorn  # Reflex's own dependency; granian serves the console's single port

    install_log_redaction()
    uvicorn.run(headless_app(), host=args.host, port=args.port, log_level="warning", access_log=False,
                lifespan="on")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
