"""Live channel instances per integration, built from the stored (decrypted) credentials.

One instance per integration and process, so each provider keeps one HTTP connection pool
(DESIGN §11). An integration changed since its instance was built gets a fresh one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.app_credentials import apps_for_hub
from app.services.installations import installations_for_hub
from app.services.integrations import open_secrets
from app.services.runtime import Runtime
from channels import get_channel_class
from channels.apps import AppFactory
from channels.base import Channel
from models import Integration, Project
from models.store.routing import integration_stamp

_OF_TENANT = select(Integration).join(Project, Project.id == Integration.project_id).where(
    Project.slug == bindparam("tenant"), Integration.kind == bindparam("kind"))
TENANT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a project slug can be
MAX_TENANTS = 4096  # cached (kind, tenant) answers; forged tenant names must not grow it without bound


class TenantChannel(NamedTuple):
    """What verifies a webhook of one tenant, and where it came from."""

    integration_id: str
    project_id: str
    kind: str
    channel: Channel


def channel_from(runtime: Runtime, kind: str, public: Mapping[str, Any], secrets: Mapping[str, Any]) -> Channel:
    """A kind's channel from an integration's public fields (those its ``Config`` knows) and open secrets,
    talking to the provider at the base URL its settings name."""
    cls = get_channel_class(kind)
    api_url = getattr(runtime.settings, cls.api_url_setting, "") if cls.api_url_setting else ""
    return cls({k: v for k, v in public.items() if k in cls.Config.model_fields}, secrets, api_url=api_url)


class ChannelHub:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        runtime.closers.append(self.aclose)
        self._cache: dict[str, tuple[str, Channel]] = {}
        # (kind, tenant) -> (expires, the channel or None, when it was read)
        self._tenants: dict[tuple[str, str], tuple[float, TenantChannel | None, float]] = {}

    def build(self, integration: Integration) -> Channel:
        return channel_from(self.runtime, integration.kind, integration.public,
                            open_secrets(self.runtime.secrets, integration))

    async def for_integration(self, integration: Integration, session: AsyncSession | None = None) -> Channel:
        """The integration's channel with its installations attached (built again when the integration's
        ``updated_at`` moved: an install or uninstall touches it)."""
        stamp = integration.updated_at.isoformat()
        cached = self._cache.get(integration.id)
        if cached and cached[0] == stamp:
            return cached[1]
        channel = self.build(integration)
        if session is None:
            async with self.runtime.read() as read:
                await self._attach(read, integration, channel)
        else:
            await self._attach(session, integration, channel)
        self._cache[integration.id] = (stamp, channel)
        if cached:
            await cached[1].aclose()
        return channel

    async def _attach(self, session: AsyncSession, integration: Integration, channel: Channel) -> None:
        """Each workspace's tokens (per-installation kinds) and each minted app's credentials."""
        if get_channel_class(integration.kind).per_installation:
            channel.attach_installations(await installations_for_hub(session, self.runtime.secrets, integration.id))
        if isinstance(channel, AppFactory):
            channel.attach_apps(await apps_for_hub(session, self.runtime.secrets, integration.id))

    async def for_project(self, session: AsyncSession, project_id: str, kind: str) -> Channel | None:
        """The project's channel of this kind, if connected (replies, deliveries)."""
        stamp = await integration_stamp(session, project_id=project_id, kind=kind)
        return None if stamp is None else await self.for_stamp(session, stamp.id, stamp.updated_at)

    async def for_stamp(self, session: AsyncSession, integration_id: str, updated_at: datetime) -> Channel | None:
        """The channel of an integration whose id and ``updated_at`` were just read: the cached one
        while it is current, else built from the integration's row (loaded only then)."""
        cached = self._cache.get(integration_id)
        if cached and cached[0] == updated_at.isoformat():
            return cached[1]
        integration = await session.get(Integration, integration_id)
        return None if integration is None else await self.for_integration(integration, session)

    async def for_tenant(self, kind: str, tenant: str, *, max_age_s: float | None = None) -> TenantChannel | None:
        """The channel that verifies a webhook of ``tenant``, found without a write transaction (a
        forged request must not queue for SQLite's write lock): cached per (kind, tenant) for
        ``IC_CHANNEL_CACHE_SECONDS``, "none" included, else read outside any write transaction.
        The receiver checks the integration again inside its transaction, so a stale entry only
        delays a change, never routes to a deleted integration. ``max_age_s`` asks for an entry read
        at most that long ago (the receiver's second look after a refusal)."""
        key, now = (kind, tenant), time.monotonic()
        if not TENANT_RE.fullmatch(tenant):  # not a slug (a NUL, a path): no such tenant, without a query
            return None
        hit = self._tenants.get(key)
        if hit is not None and hit[0] > now and (max_age_s is None or now - hit[2] < max_age_s):
            return hit[1]
        async with self.runtime.read() as session:
            row = (await session.execute(_OF_TENANT, {"tenant": tenant, "kind": kind})).scalar_one_or_none()
            found = None if row is None else TenantChannel(row.id, row.project_id, row.kind,
                                                           await self.for_integration(row, session))
        if len(self._tenants) >= MAX_TENANTS:
            self._tenants = {k: v for k, v in self._tenants.items() if v[0] > now}
            if len(self._tenants) >= MAX_TENANTS:
                self._tenants.clear()
        # "None" briefly: a tenant connected in another process is found again within a second.
        ttl = self.runtime.settings.channel_cache_seconds if found is not None else min(
            1.0, self.runtime.settings.channel_cache_seconds)
        self._tenants[key] = (now + ttl, found, now)
        return found

    def forget_tenants(self) -> None:
        """This process changed an integration: look the tenants up again."""
        self._tenants.clear()

    async def aclose(self) -> None:
        for _, channel in self._cache.values():
            await channel.aclose()
        self._cache.clear()


_hub: ChannelHub | None = None


def get_hub(runtime: Runtime) -> ChannelHub:
    """The process's hub (rebuilt when tests swap the runtime)."""
    global _hub
    if _hub is None or _hub.runtime is not runtime:
        _hub = ChannelHub(runtime)
    return _hub
