"""``python -m app.worker``: run workers only, without HTTP (extra capacity on other hosts).

Uses the same settings as the server (IC_DATABASE_URL, IC_WORKERS, IC_MODEL_*); the schema must
already be migrated (the server or ``./run.sh --setup-only`` does that).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from app.services.background import background
from app.services.runtime import get_runtime
from channels.redact import install_log_redaction


async def main() -> None:
    runtime = get_runtime()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with background(runtime):
        print("worker ready", flush=True)  # supervisors and tests wait for this line
        await stop.wait()
    await runtime.close()


if __name__ == "__main__":
    install_log_redaction()
    logging.basicConfig(level=os.environ.get("IC_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
