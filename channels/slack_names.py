"""Display names of Slack senders (ID-2): looked up once per person and process with users.info after
their first message was stored, then shown on their next messages. Never the identity (that is the
user id); a failed lookup only leaves the id shown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from channels.types import Inbound, InboundMessage

log = logging.getLogger("channels.slack")

MAX_NAMES = 10_000  # cached per channel instance
MAX_LOOKUPS = 32  # users.info calls in flight at once


class DisplayNames:
    def __init__(self, look_up: Callable[[str], Awaitable[str]]) -> None:
        self._look_up = look_up  # sender id -> display name ("" when it has none)
        self._names: dict[str, str] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}

    def named(self, item: Inbound) -> Inbound:
        """The item with the sender's cached name, when Slack sent only the user id."""
        if isinstance(item, InboundMessage) and item.sender_display == item.sender_id.rsplit(":", 1)[-1]:
            known = self._names.get(item.sender_id)
            if known:
                return replace(item, sender_display=known)
        return item

    def learn(self, items: Sequence[Inbound]) -> None:
        for item in items:
            if not isinstance(item, InboundMessage):
                continue
            sender = item.sender_id
            if sender in self._names or sender in self._pending or len(self._pending) >= MAX_LOOKUPS:
                continue
            self._pending[sender] = asyncio.create_task(self._fill(sender))

    async def _fill(self, sender: str) -> None:
        try:
            name = await self._look_up(sender)
            if len(self._names) >= MAX_NAMES:
                self._names.clear()
            self._names[sender] = name or sender.rsplit(":", 1)[-1]  # no name: keep the id, ask no more
        except Exception as exc:  # a courtesy: the message was stored already
            log.info("slack: users.info for %s failed: %s", sender, exc)
        finally:
            self._pending.pop(sender, None)

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        self._pending.clear()
