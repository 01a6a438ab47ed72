"""Long polling for bots this server cannot receive webhooks for (a laptop behind NAT).

Exactly one process polls each bot (``jobs.leader``); updates go through the same inbound path as
webhooks (``app.services.inbound.handle``), so dedupe and routing are identical.
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import select

from app.services.channel_hub import get_hub
from app.services.inbound import handle
from app.services.runtime import Runtime
from channels.base import MalformedPayload
from channels.telegram import TelegramChannel
from jobs.leader import lead_forever
from models import Integration

log = logging.getLogger("ingram.polling")

LONG_POLL_S = 20
IDLE_RECHECK_S = 5.0


async def _poll_telegram(runtime: Runtime, *, long_poll_s: int) -> None:
    offsets: dict[str, int] = {}
    while True:
        async with runtime.sessions() as session:
            integrations = list((await session.execute(select(Integration).where(
                Integration.kind == "telegram"))).scalars())
        polling = [i for i in integrations if i.public.get("mode") == "polling"]
        if not polling:
            await asyncio.sleep(IDLE_RECHECK_S)
            continue
        for integration in polling:
            channel = await get_hub(runtime).for_integration(integration)
            assert isinstance(channel, TelegramChannel)
            try:
                updates = await channel.get_updates(offset=offsets.get(integration.id),
                                                    timeout=long_poll_s if len(polling) == 1 else 1)
            except Exception as exc:  # the provider being down must not stop the loop
                log.warning("telegram getUpdates failed: %s", exc)
                await asyncio.sleep(2)
                continue
            for update in updates:
                offsets[integration.id] = int(update["update_id"]) + 1
                try:
                    items = channel.parse_update(update)
                except MalformedPayload as exc:
                    log.warning("skipping a malformed update: %s", exc)
                    continue
                await handle(runtime, integration=integration, channel=channel, items=items)


async def poll_forever(runtime: Runtime, *, long_poll_s: int = LONG_POLL_S, retry_s: float = 3.0) -> None:
    await lead_forever(runtime.engine, runtime.settings.data_dir, "telegram-polling",
                       lambda: _poll_telegram(runtime, long_poll_s=long_poll_s), retry_s=retry_s)
