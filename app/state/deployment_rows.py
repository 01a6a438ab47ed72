"""What the console shows of deployments, as plain values: each row's fields, the offers on a smith's
Deployments tab, and the words for one-time links, windows and a smith's own apps (app/state/deployments.py
holds the state that uses them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.services import deployments, integrations
from app.services.actors import Actor
from app.services.deployments import LINK_MODES, START_TOKEN_TTL, DeploymentView
from app.services.installations import list_installations
from app.services.mcp import client_config, desktop_config
from channels import REGISTRY
from channels.apps import AppFactory
from channels.base import Channel
from models import Agent, Deployment, Smith
from models.types import utcnow

# A channel whose smiths' own apps are minted with an app configuration token the person pastes (Slack's),
# rather than through the connection itself (an email inbox is a routing rule on the connected domain).
FACTORY_TOKEN_FIELD = "config_refresh_token"

# What each one-time link mode offers on a smith's Deployments tab: the button, and the toast once made.
LINK_BUTTONS = {"start_token": "Create {name} deep link", "oauth_install": "Add to {name}"}
LINK_CREATED = {"start_token": "Deep link created: send it to the person, or scan it",
                "oauth_install": "Install link created: open it, or send it to whoever installs the app"}
LINK_DAYS = START_TOKEN_TTL.days  # how long a one-time link works, as the link card says
# What opening a start_token link does, where it is not simply "it binds their account" (the link card).
LINK_EXPLAINED = {
    "whatsapp": "Opening it in WhatsApp fills in a message with a one-time connect code: when the person "
                "sends it, their WhatsApp number is bound to this smith.",
}


@dataclass(frozen=True)
class OwnAppWords:
    """How a smith's own app (setup.mode provision) reads on its row, which renames it in place (REN-1)."""
    name_label: str  # beside its name ("" where the name speaks for itself)
    rename_label: str  # the pencil's accessible name
    input_id: str  # the rename input's id (its Save button's is this plus "-save")
    renamed: str  # the toast, with {name} and {address}


OWN_APPS = {
    "slack": OwnAppWords("", "Rename the Slack app", "rename-slack-app", "Slack app renamed to “{name}”"),
    "email": OwnAppWords("From name", "Change the From name", "rename-email-inbox",
                         "Mail from {address} now goes out as “{name}”"),
}
# What removing a deployment does, where it says more than that the smith stops answering; and its toast.
REMOVE_TEXTS = {"email": "Mail to {address} will no longer reach this smith: its routing rule is deleted from "
                         "Cloudflare, and the smith no longer writes from that address."}
REMOVED = {"email": "Inbox {address} removed"}


def link_mode(kind: str) -> str | None:
    """The one-time link a channel's smith deployments start from (its ``setup_modes``), if any."""
    cls = REGISTRY.get(kind)
    modes = sorted(cls.setup_modes & LINK_MODES) if cls else []
    return modes[0] if modes else None


async def workspace_names(session: AsyncSession, *, project_id: str, kinds: set[str]) -> dict[tuple[str, str], str]:
    """(kind, installation id) -> its name (a Slack workspace's), for channels with per-workspace installs."""
    names: dict[tuple[str, str], str] = {}
    for kind in sorted(kinds):
        cls = REGISTRY.get(kind)
        if cls is None or not cls.per_installation:
            continue
        integration = await integrations.find_integration(session, project_id=project_id, kind=kind)
        for row in await list_installations(session, integration_id=integration.id) if integration else []:
            names[(kind, row.external_id)] = row.name or row.external_id
    return names


def _place(kind: str, address: str | None, names: dict[tuple[str, str], str]) -> tuple[str, str]:
    """A per-installation address as its workspace and conversation: Slack's "T0TEAM:D0123", or a dedicated
    app's "A0APP:T0TEAM:D0123", whose installation is keyed "A0APP:T0TEAM" (all before the last ':')."""
    cls = REGISTRY.get(kind)
    if cls is None or not cls.per_installation or not address or ":" not in address:
        return "", ""
    installation, _, conversation = address.rpartition(":")
    return names.get((kind, installation), installation.rpartition(":")[2]), conversation


def takes_factory_token(cls: type[Channel]) -> bool:
    return issubclass(cls, AppFactory) and FACTORY_TOKEN_FIELD in cls.Put.model_fields


def app_factory(cls: type[Channel], public: Mapping[str, Any]) -> str:
    """Whether a connected channel can mint a smith its own app with a configuration token (Slack's app
    factory, issue 17): "ready" once the token is set, "missing" where the channel takes one but has none,
    "" where it takes none."""
    if not takes_factory_token(cls):
        return ""
    return "ready" if public.get("config_token_expires_at") else "missing"


def address_factory(cls: type[Channel]) -> bool:
    """A channel whose smiths get an address of their own through the connection alone, and no link (email:
    an inbox on the connected domain, active at once)."""
    return issubclass(cls, AppFactory) and cls.setup_modes == {"provision"} and not takes_factory_token(cls)


def address_offer(cls: type[Channel], public: Mapping[str, Any], *, connected: bool) -> dict[str, str]:
    """Such a channel on a smith's Deployments tab: its "Create … inbox" button and the domain its addresses
    are on, or (not connected) the hint where to connect it. Same keys as a link offer, plus ``domain``."""
    domain = str(public.get("domain") or "")
    noun = str(getattr(cls, "app_noun", "address"))
    return {"kind": cls.kind, "name": cls.display_name, "mode": "provision", "label": f"Create {noun}",
            "button_id": f"create-{cls.kind}-inbox", "notice_id": f"connect-{cls.kind}-first",
            "connected": "yes" if connected else "", "via": f"an address on {domain}" if domain else "",
            "domain": domain, "factory": "", "factory_error": "", "app_button_id": "", "factory_hint_id": ""}


def from_now(left: timedelta) -> str:
    """A time still to come, roughly: "in 3 h", "in 25 min"."""
    minutes = max(1, -(-int(left.total_seconds()) // 60))  # rounded up: never "in 0 min"
    return f"in {minutes // 60} h" if minutes >= 60 else f"in {minutes} min"


def reply_window(view: DeploymentView, now: datetime) -> tuple[str, str]:
    """Beside a conversation's address, on channels that may write only within a window after the person's
    last message (WhatsApp's 24 hours, WA-4): whether the smith can write now, and the badge's colour."""
    cls = REGISTRY.get(view.kind)
    if cls is None or cls.reply_window is None or view.status != "active" or not view.address:
        return "", ""
    if view.reply_window_ends_at is None:
        return "Waiting for their first message", "gray"
    ends = datetime.fromisoformat(view.reply_window_ends_at)
    if ends <= now:
        return "Window closed: the person must write first", "amber"
    return f"Can reply until {ends:%H:%M} UTC ({from_now(ends - now)})", "green"


def own_app_fields(deployment: Deployment) -> dict[str, str]:
    """A smith's own app on its row (setup.mode provision): a dedicated Slack app or an email inbox; how the
    row names it and renames it, and what removing it says. Empty words for every other deployment."""
    words = OWN_APPS.get(deployment.kind)
    address = deployment.address or ""
    own = (words is not None and deployment.setup.get("mode") == "provision" and deployment.status != "revoked"
           and bool(deployment.setup.get("app_id") if deployment.kind == "slack" else address))
    words = words if own and words else OwnAppWords("", "", "", "")
    cls = REGISTRY.get(deployment.kind)
    return {
        "renamable": "yes" if own else "", "name_label": words.name_label, "rename_label": words.rename_label,
        "rename_id": words.input_id, "name_max": str(getattr(cls, "max_display_name", 200)),
        "remove_text": REMOVE_TEXTS[deployment.kind].format(address=address)
        if deployment.kind in REMOVE_TEXTS and address else "The smith stops answering on this surface.",
        "owner_email": deployment.owner_email or "",
    }


async def _rows(session: AsyncSession, actor: Actor, items: list[Deployment]) -> list[dict[str, str]]:
    names = await workspace_names(session, project_id=actor.project_id, kinds={d.kind for d in items})
    now = utcnow()
    rows = []
    # With each conversation's reply window; in the order of ``items``.
    for deployment, view in zip(items, await deployments.views(session, items), strict=True):
        model = Smith if view.target.type == "smith" else Agent
        target = await session.get(model, view.target.id)
        workspace, conversation = _place(view.kind, view.address, names)
        window, window_color = reply_window(view, now)
        rows.append({
            "id": view.id, "kind": view.kind, "status": view.status, "address": view.address or "—",
            "workspace": workspace, "conversation": conversation,
            # A smith's own Slack app (issue 17): its id, and its name, which the row can rename.
            "slack_app_id": view.slack_app_id or "", "name": view.display_name or "",
            "target_type": view.target.type, "target_id": view.target.id,
            "target_name": getattr(target, "name", view.target.id),
            "target_href": f"/smiths/{view.target.id}" if view.target.type == "smith" else "/agents",
            "window": window, "window_color": window_color,
            "owner": view.owner_identity or "", "created_at": view.created_at[:16].replace("T", " "),
            # Why and when a revoked one stopped answering ("replaced · 2026-12-04 06:10").
            "revoked_note": f"{view.revoked_reason or 'revoked'} · {(view.revoked_at or '')[:16].replace('T', ' ')}"
            if view.status == "revoked" else "",
            # MCP endpoints: the URL and ready-to-paste client configurations (token left as a placeholder).
            "endpoint_url": view.endpoint_url or "",
            "client_config": client_config(view.endpoint_url, getattr(target, "name", "")) if view.endpoint_url else "",
            "desktop_config": desktop_config(view.endpoint_url, getattr(target, "name", ""))
            if view.endpoint_url else "",
            **own_app_fields(deployment),
        })
    return rows
