"""Credentials that expire and renew themselves (``Channel.credentials_due`` / ``renew_credentials``: Slack's
app configuration token, rotated before its 12 hours are up).

The leader's upkeep loop (app.services.polling) asks each integration's channel every few seconds; a due
one is renewed with no transaction open, and the new secrets (a rotated token with its new refresh token)
are stored together in one transaction. A refusal is never silent: the integration's public
``credentials_error`` says why (the console shows it) and an ``integration.error`` event fires, once per
new reason; attempts back off meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from app.services.integrations import store_renewed
from app.services.runtime import Runtime
from channels.base import Channel
from channels.errors import ChannelError
from jobs.events import append_event
from models import Integration
from models.types import utcnow

log = logging.getLogger("ingram.renewal")

RETRY_AFTER = timedelta(minutes=5)
ERROR_FIELD = "credentials_error"  # in the integration's public details


class Renewals:
    """The leader's renewals in flight and their back-off, per integration."""

    def __init__(self) -> None:
        self._not_before: dict[str, datetime] = {}

    async def renew_if_due(self, runtime: Runtime, integration_id: str, channel: Channel) -> None:
        now = utcnow()
        not_before = self._not_before.get(integration_id)
        if not channel.credentials_due(now) or (not_before is not None and now < not_before):
            return
        self._not_before[integration_id] = now + RETRY_AFTER  # one attempt at a time, and a pause after failing
        try:
            renewed = await channel.renew_credentials(now)
        except ChannelError as exc:
            await record_refusal(runtime, integration_id, f"{exc.code or 'renewal_failed'}: {exc}")
            return
        async with runtime.transaction() as session:
            integration = await session.get(Integration, integration_id)
            if integration is None:
                return
            await store_renewed(session, box=runtime.secrets, integration=integration, secrets=renewed.secrets,
                                public={**renewed.details, ERROR_FIELD: ""})
        self._not_before.pop(integration_id, None)
        log.info("%s: credentials renewed", channel.kind)


async def record_refusal(runtime: Runtime, integration_id: str, reason: str) -> None:
    """The integration's credentials were refused: shown on its card, and `integration.error` once per reason."""
    log.warning("credentials refused: %s", reason)
    async with runtime.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.public.get(ERROR_FIELD) == reason:
            return
        integration.public = {**integration.public, ERROR_FIELD: reason}  # updated_at kept: the channel is fine
        await append_event(session, project_id=integration.project_id, type="integration.error",
                           data={"kind": integration.kind, "error": reason})
