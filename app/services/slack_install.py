"""SL-2: "Add to Slack". A smith's one-time install link sends the person to Slack's consent page;
Slack sends them back with a code, which becomes the workspace's installation, and the deployment is
bound to the installer's DM.

The install link's token is the OAuth ``state`` (192 bits, single use, 7 days); a cookie set when the
link was opened ties the callback to that browser, as Bolt's state store does. Slack is called with no
transaction open (app/services/tenant_setup.end_transaction's reason).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Literal, NamedTuple
from urllib.parse import urlencode

from sqlalchemy import select

from app.services.channel_hub import get_hub
from app.services.events import record_event
from app.services.installations import save_installation
from app.services.provider_apps import live_app, provisioned
from app.services.routing import bind_start_token, hash_start_token
from app.services.runtime import Runtime
from channels.errors import SetupError
from channels.slack import SlackChannel
from channels.slack_inbound import address_of, installation_key
from channels.slack_manifest import ASSISTANT_SCOPES, BOT_SCOPES, USER_SCOPES
from models import Deployment, Integration
from models.types import utcnow

log = logging.getLogger("ingram.slack")

KIND = "slack"
STATE_COOKIE = "ic_slack_state"
INVALID_LINK = "This install link is invalid, already used or expired. Ask for a new one."
OTHER_BROWSER = "Open the install link again in this browser: the answer from Slack does not match it."


@dataclass(frozen=True)
class InstallProblem(Exception):
    message: str


@dataclass(frozen=True)
class Outcome:
    result: Literal["connected", "cancelled", "error"]
    message: str
    return_url: str | None = None
    team_name: str | None = None


def state_cookie(token: str) -> str:
    return hashlib.sha256(f"slack-state:{token}".encode()).hexdigest()[:40]


class Pending(NamedTuple):
    """A pending Slack deployment whose install link is still good, and its project's Slack app."""

    deployment_id: str
    project_id: str
    smith_id: str
    return_url: str | None
    integration_id: str
    client_id: str | None
    app_id: str | None  # a dedicated app's (setup.mode provision), else the shared app is installed
    bot_scopes: tuple[str, ...]


async def _pending(runtime: Runtime, token: str) -> Pending | None:
    async with runtime.read() as session:
        deployment = (await session.execute(select(Deployment).where(
            Deployment.kind == KIND, Deployment.start_token_hash == hash_start_token(token)))).scalar_one_or_none()
        if (deployment is None or deployment.status == "revoked" or deployment.start_token_expires_at is None
                or deployment.start_token_expires_at < utcnow()):
            return None
        integration = (await session.execute(select(Integration).where(
            Integration.project_id == deployment.project_id, Integration.kind == KIND))).scalar_one_or_none()
        if integration is None:
            return None
        # The link's own return URL, else the app's (PUT /v1/tenant/slack return_url).
        return_url = deployment.setup.get("return_url") or integration.public.get("return_url")
        client_id, app_id, scopes = integration.public.get("client_id"), None, BOT_SCOPES
        if provisioned(deployment):
            app_id = str(deployment.setup["app_id"])
            app = await live_app(session, project_id=deployment.project_id, kind=KIND, app_id=app_id)
            client_id = app.public.get("client_id") if app is not None else None
            if app is not None and app.public.get("assistant"):
                scopes = BOT_SCOPES + ASSISTANT_SCOPES
        return Pending(deployment.id, deployment.project_id, deployment.target_id, return_url, integration.id,
                       client_id, app_id, scopes)


def redirect_uri(runtime: Runtime) -> str:
    return f"{runtime.settings.public_url}/v1/slack/oauth/callback"


async def begin(runtime: Runtime, token: str) -> str:
    """Slack's authorize URL for this install link, or ``InstallProblem``."""
    found = await _pending(runtime, token)
    if found is None:
        raise InstallProblem(INVALID_LINK)
    client_id = found.client_id
    if not client_id:
        raise InstallProblem("This smith's Slack app was deleted; create a new one." if found.app_id else
                             "Slack is not connected on this server yet (Settings → Integrations → Slack).")
    query = urlencode({"client_id": client_id, "scope": ",".join(found.bot_scopes), "user_scope": ",".join(USER_SCOPES),
                       "redirect_uri": redirect_uri(runtime), "state": token})
    return f"{runtime.settings.slack_oauth_url}?{query}"


async def complete(runtime: Runtime, *, state: str, code: str | None, error: str | None,
                   cookie: str | None) -> Outcome:
    """Exchange the code, store the workspace's installation and bind the deployment to the installer's DM."""
    found = await _pending(runtime, state) if state else None
    if found is None:
        return Outcome("error", INVALID_LINK)
    return_url = found.return_url
    if cookie is None or not hmac.compare_digest(cookie, state_cookie(state)):
        return Outcome("error", OTHER_BROWSER, return_url)
    if error or not code:
        return Outcome("cancelled", "The install was cancelled; the link still works if you change your mind.",
                       return_url)
    async with runtime.read() as session:
        channel = await get_hub(runtime).for_project(session, found.project_id, KIND)
    if not isinstance(channel, SlackChannel):
        return Outcome("error", "Slack was disconnected on this server meanwhile.", return_url)
    client = channel.app_client(found.app_id) if found.app_id else None
    if found.app_id and client is None:
        return Outcome("error", "This smith's Slack app was deleted meanwhile.", return_url)
    try:
        granted = await channel.exchange_code(code, redirect_uri(runtime), client)
        bot_token = str(granted.get("access_token") or "")
        identity = await channel.auth_test(bot_token)
        team = granted.get("team") or {}
        installer = str((granted.get("authed_user") or {}).get("id") or "")
        dm = await channel.open_dm(bot_token, installer)
    except SetupError as exc:
        log.warning("slack install failed: %s", exc)
        return Outcome("error", f"Slack did not complete the install ({exc.code}).", return_url)
    team_id, team_name = str(team.get("id") or identity.get("team_id") or ""), str(team.get("name") or "")
    if not (bot_token and team_id and installer and dm):
        return Outcome("error", "Slack's answer lacked the workspace, the installer or the bot token.", return_url)
    user = granted.get("authed_user") or {}
    owner = f"slack:{team_id}:{installer}"
    async with runtime.transaction() as session:
        row = await session.get(Integration, found.integration_id)
        if row is None:
            return Outcome("error", "Slack was disconnected on this server meanwhile.", return_url)
        secrets = {"bot_token": bot_token, **({"user_token": user["access_token"]} if user.get("access_token") else {})}
        key = installation_key(team_id, found.app_id)  # a dedicated app's install is its own installation
        installation = await save_installation(
            session, box=runtime.secrets, integration=row, external_id=key, name=team_name, secrets=secrets,
            public={"bot_user_id": granted.get("bot_user_id") or identity.get("user_id"),
                    "bot_id": identity.get("bot_id"), "app_id": granted.get("app_id"),
                    "enterprise_id": (granted.get("enterprise") or {}).get("id"),
                    "scopes": _scopes(granted.get("scope")), "user_scopes": _scopes(user.get("scope")),
                    "installer": installer})
        bound = await bind_start_token(session, project_id=row.project_id, kind=KIND, token=state, sender_id=owner,
                                       address=address_of(key, dm))
        if bound is None:  # the same link completed twice at once: the other callback bound it
            return Outcome("error", INVALID_LINK, return_url)
        await record_event(session, project_id=row.project_id, type="slack.install", deployment_id=found.deployment_id,
                           smith_id=found.smith_id,
                           data={"installation_id": installation.id, "team_id": team_id, "team_name": team_name,
                                 "installer": owner, "deployment_id": found.deployment_id, "app_id": found.app_id})
    get_hub(runtime).forget_tenants()
    return Outcome("connected", f"Connected to {team_name or team_id}. Say hello to your smith in Slack.", return_url,
                   team_name)


def _scopes(value: object) -> list[str]:
    return sorted({s.strip() for s in str(value or "").split(",") if s.strip()})
