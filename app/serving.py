"""What every serving process runs around its requests: ``./run.sh``'s Reflex app and ``app.headless``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from app.api import mcp as mcp_api
from app.bootstrap import start
from app.services.background import background
from app.services.runtime import get_runtime


@contextlib.asynccontextmanager
async def product_lifespan() -> AsyncIterator[None]:
    """Per process: migrate (locked), bootstrap, then the scheduler and workers while it serves."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=get_runtime().settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = get_runtime()
    await start(runtime)
    try:
        # The MCP session manager runs once per process, for this process's MCP requests.
        async with background(runtime), mcp_api.running():
            yield
    finally:
        await runtime.close()
