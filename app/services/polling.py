"""The leader's provider upkeep. Pull receivers: integrations the provider cannot reach by webhook (a
laptop behind NAT) receive by pulling instead, through the channel's own receiver: Telegram's long
polling, Slack's Socket Mode. And credentials that expire are renewed when due
(app.services.credential_renewal), from the same look at the integrations every few seconds.

Exactly one process pulls (``jobs.leader``); every pulled batch goes through the same inbound path as
webhooks (``app.services.inbound.handle``), so dedupe and routing are identical. One task per pulling
integration, restarted when it fails and replaced when the integration changes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel import select

from app.services.channel_hub import get_hub
from app.services.credential_renewal import Renewals
from app.services.inbound import Source, handle
from app.services.runtime import Runtime
from channels.base import Channel
from channels.types import Inbound
from jobs.leader import lead_forever
from models import Integration

log = logging.getLogger("ingram.polling")

IDLE_RECHECK_S = 5.0
RETRY_S = 2.0


async def _pull(runtime: Runtime, source: Source, channel: Channel) -> None:
    async def deliver(items: list[Inbound]) -> None:
        await handle(runtime, source=source, channel=channel, items=items)

    while True:
        try:
            await channel.pull_forever(deliver)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the provider being down must not stop the loop
            log.warning("%s: pulling failed (%s); retrying", source.kind, exc)
        await asyncio.sleep(RETRY_S)


async def _pull_all(runtime: Runtime, recheck_s: float) -> None:
    running: dict[str, tuple[datetime, asyncio.Task[None]]] = {}
    renewals = Renewals()
    try:
        while True:
            async with runtime.read() as session:
                integrations = list((await session.execute(select(Integration))).scalars())
                wanted: dict[str, tuple[datetime, Source, Channel]] = {}
                upkeep: list[tuple[str, Channel]] = []
                for integration in integrations:  # read inside the session: its rows expire after it
                    channel = await get_hub(runtime).for_integration(integration, session)
                    upkeep.append((integration.id, channel))
                    if channel.pulls():
                        wanted[integration.id] = (integration.updated_at, Source.of(integration), channel)
            for integration_id, (stamp, task) in list(running.items()):
                current = wanted.get(integration_id)
                if current is None or current[0] != stamp or task.done():
                    task.cancel()
                    del running[integration_id]
            for integration_id, (stamp, source, channel) in wanted.items():
                if integration_id not in running:
                    task = asyncio.create_task(_pull(runtime, source, channel),
                                               name=f"pull-{source.kind}-{integration_id}")
                    running[integration_id] = (stamp, task)
            for integration_id, channel in upkeep:  # outside the read: renewing calls the provider
                await renewals.renew_if_due(runtime, integration_id, channel)
            await asyncio.sleep(recheck_s)
    finally:
        for _, task in running.values():
            task.cancel()
        await asyncio.gather(*(task for _, task in running.values()), return_exceptions=True)


async def poll_forever(runtime: Runtime, *, recheck_s: float = IDLE_RECHECK_S, retry_s: float = 3.0) -> None:
    await lead_forever(runtime.engine, runtime.settings.data_dir, "pull-receivers",
                       lambda: _pull_all(runtime, recheck_s), retry_s=retry_s)
