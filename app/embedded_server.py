"""Serve the product in the launching process itself when it runs one worker (issue 19 §4).

``reflex run --env prod`` serves through granian's multi-process server: the ``reflex run`` process imports
the whole app, stays as a supervisor that serves nothing, and forks the one worker that does. An idle install
then held ~345 MB of memory in two processes. With one worker (the default without Redis) nothing needs a
supervisor, so this module runs granian's embedded server on the launcher's own event loop: the same Rust
HTTP worker and ASGI lifespan (the run workers, the scheduler), in one process. Several workers (Redis and
``GRANIAN_WORKERS`` > 1) keep Reflex's multi-process server.

granian marks the embedded server experimental; ``IC_SINGLE_PROCESS=0`` goes back to Reflex's own server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

SINGLE_PROCESS_SETTING = "IC_SINGLE_PROCESS"


def wanted(workers: int, environ: dict[str, str] | None = None) -> bool:
    environ = dict(os.environ if environ is None else environ)
    return workers == 1 and environ.get(SINGLE_PROCESS_SETTING, "1").strip().lower() not in {"0", "false", "no"}


def serve(target: str, host: str, port: int, log_level: str, log_dictconfig: dict[str, Any] | None) -> None:
    """Serve ``target`` ("module:app", a Reflex app whose call gives the ASGI app) until SIGINT or SIGTERM."""
    from granian._internal import load_target
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    reflex_app = load_target(target)
    server = Server(
        target=reflex_app,
        factory=True,  # the embedded server calls the target to get the ASGI app, as a worker would
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        log_level=LogLevels(log_level),
        log_dictconfig=log_dictconfig,
    )
    # Said above and in ARCHITECTURE.md; a warning at every start would only alarm the person running it.
    logging.getLogger("_granian").addFilter(lambda record: "experimental" not in record.getMessage())
    asyncio.run(_serve_until_signalled(server.serve, server.stop))


async def _serve_until_signalled(serve_forever: Callable[[], Any], stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    await serve_forever()
