"""LI-1: a Page admin's 3-legged consent. LinkedIn gives no app-only token for Pages, so an administrator of
the Page signs in at LinkedIn once; the tokens it answers are stored, encrypted, with who consented.

An admin of this server makes a one-time consent link (7 days) and opens it, or sends it to whoever
administers the Page. The link redirects to LinkedIn's consent screen with the link's token as the OAuth
``state`` (``<tenant>.<token>``: the callback has no tenant in its path); a cookie set when the link was
opened ties the callback to that browser, as the Slack install does. LinkedIn is called with no
transaction open (app/services/tenant_setup.end_transaction's reason), and the link is used up in the same
transaction that stores the tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.actors import Actor
from app.services.channel_hub import get_hub
from app.services.events import record_event
from app.services.integrations import find_integration, get_integration, open_secrets, reseal
from app.services.runtime import Runtime
from channels.errors import SetupError
from channels.linkedin import LinkedInChannel
from models import Integration, Project
from models.types import utcnow

log = logging.getLogger("ingram.linkedin")

KIND = "linkedin"
STATE_COOKIE = "ic_linkedin_state"
LINK_TTL = timedelta(days=7)
LINK_SECRET = "consent_link_hash"  # sealed with the integration's secrets; never shown
INVALID_LINK = "This consent link is invalid, already used or expired. Ask for a new one in Settings → Integrations."
OTHER_BROWSER = "Open the consent link again in this browser: the answer from LinkedIn does not match it."


class ConsentLink(BaseModel):
    url: str
    expires_at: str


@dataclass(frozen=True)
class ConsentProblem(Exception):
    message: str


@dataclass(frozen=True)
class Outcome:
    result: Literal["connected", "cancelled", "error"]
    message: str


def _hash(token: str) -> str:
    return hashlib.sha256(f"linkedin-consent:{token}".encode()).hexdigest()


def state_cookie(state: str) -> str:
    return hashlib.sha256(f"linkedin-state:{state}".encode()).hexdigest()[:40]


def redirect_uri(runtime: Runtime) -> str:
    return f"{runtime.settings.public_url}/v1/linkedin/oauth/callback"


async def issue_link(session: AsyncSession, *, actor: Actor, runtime: Runtime) -> ConsentLink:
    """A fresh one-time consent link (an earlier one stops working)."""
    actor.require_admin()
    integration = await get_integration(session, actor=actor, kind=KIND)
    project = await session.get(Project, actor.project_id)
    assert project is not None
    token = secrets.token_urlsafe(24)
    expires_at = utcnow() + LINK_TTL
    reseal(runtime.secrets, integration, {LINK_SECRET: _hash(token)})
    integration.public = {**integration.public, "consent_link_expires_at": expires_at.isoformat()}
    await record_event(session, project_id=actor.project_id, type="linkedin.consent_link",
                       data={"expires_at": expires_at.isoformat()})
    return ConsentLink(url=f"{runtime.settings.public_url}/v1/linkedin/consent/{project.slug}.{token}",
                       expires_at=expires_at.isoformat())


async def _pending(runtime: Runtime, state: str) -> tuple[str, LinkedInChannel] | None:
    """The integration (its id) whose unexpired consent link ``state`` names, and its channel."""
    tenant, _, token = state.partition(".")
    if not tenant or not token:
        return None
    async with runtime.read() as session:
        project = (await session.execute(select(Project).where(Project.slug == tenant))).scalar_one_or_none()
        if project is None:
            return None
        integration = await find_integration(session, project_id=project.id, kind=KIND)
        if integration is None or not _link_matches(runtime, integration, token):
            return None
        channel = await get_hub(runtime).for_integration(integration, session)
        integration_id = integration.id
    return (integration_id, channel) if isinstance(channel, LinkedInChannel) else None


def _link_matches(runtime: Runtime, integration: Integration, token: str) -> bool:
    stored = open_secrets(runtime.secrets, integration).get(LINK_SECRET, "")
    expires = str(integration.public.get("consent_link_expires_at") or "")
    try:
        live = bool(expires) and datetime.fromisoformat(expires) > utcnow()
    except ValueError:
        live = False
    return live and bool(stored) and hmac.compare_digest(stored, _hash(token))


async def begin(runtime: Runtime, state: str) -> str:
    """LinkedIn's consent URL for this link, or ``ConsentProblem``."""
    found = await _pending(runtime, state)
    if found is None:
        raise ConsentProblem(INVALID_LINK)
    _, channel = found
    if not channel.config.client_id:
        raise ConsentProblem("LinkedIn is not connected on this server (Settings → Integrations → LinkedIn).")
    return channel.consent_url(redirect_uri(runtime), state)


async def complete(runtime: Runtime, *, state: str, code: str | None, error: str | None,
                   cookie: str | None) -> Outcome:
    """Exchange the code, find which Page admin consented, and store the tokens with their name."""
    found = await _pending(runtime, state) if state else None
    if found is None:
        return Outcome("error", INVALID_LINK)
    if cookie is None or not hmac.compare_digest(cookie, state_cookie(state)):
        return Outcome("error", OTHER_BROWSER)
    if error or not code:
        return Outcome("cancelled", "The consent was cancelled; the link still works if you change your mind.")
    integration_id, channel = found
    try:
        tokens = await channel.exchange_code(code, redirect_uri(runtime))
        member = await channel.page_admin(str(tokens["access_token"]))
    except SetupError as exc:
        log.warning("linkedin consent failed: %s", exc)
        return Outcome("error", f"LinkedIn did not complete the consent ({exc.code}): {exc}")
    async with runtime.transaction() as session:
        row = await session.get(Integration, integration_id)
        if row is None:
            return Outcome("error", "LinkedIn was disconnected on this server meanwhile.")
        if not _link_matches(runtime, row, state.partition(".")[2]):  # the same link completed twice at once
            return Outcome("error", INVALID_LINK)
        new_secrets = {"access_token": str(tokens["access_token"])}
        if tokens.get("refresh_token"):
            new_secrets["refresh_token"] = str(tokens["refresh_token"])
        reseal(runtime.secrets, row, new_secrets, removed=frozenset({LINK_SECRET}))
        public = {k: v for k, v in row.public.items() if k != "consent_link_expires_at"}
        row.public = {**public, "consent_member": member,
                      "access_token_expires_at": str(tokens.get("access_token_expires_at") or "")}
        row.updated_at = utcnow()
        await record_event(session, project_id=row.project_id, type="linkedin.consent",
                           data={"consent_member": member, "page_urn": row.public.get("page_urn"),
                                 "refreshable": "refresh_token" in new_secrets})
    get_hub(runtime).forget_tenants()
    return Outcome("connected", f"A Page admin ({member}) has given consent. Messaging still needs LinkedIn's "
                   "approval of the app, then an admin switches it on in Settings → Integrations → LinkedIn.")

