"""Deployments: the project-wide list (CON-1) and a smith's Deployments tab (CON-2), where a smith's own app
(a dedicated Slack app, an email inbox) is renamed in place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import reflex as rx
from reflex_base.constants.state import FIELD_MARKER
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import deployments, integrations
from app.services.actors import Actor
from app.services.deployments import LINK_MODES, START_TOKEN_TTL, DeploymentCreate, DeploymentView, Target
from app.services.errors import DomainError
from app.services.installations import list_installations
from app.services.mcp import client_config, desktop_config
from app.services.qr import qr_data_uri
from app.state.auth import AuthState, NotSignedIn, describe
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


class DeploymentsState(AuthState):
    deployments: list[dict[str, str]] = []
    next_cursor: str = ""
    loaded: bool = False
    show_revoked: bool = False  # revoked ones stay listed (the API's include_revoked); hidden by default here

    @rx.event
    async def toggle_revoked(self, value: bool) -> Any:
        self.show_revoked = value
        return await self.load()

    @rx.event
    async def load(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                page = await deployments.list_deployments(session, actor=actor, include_revoked=self.show_revoked)
                self.deployments = await _rows(session, actor, list(page.items))
        except NotSignedIn:
            return rx.redirect("/login")
        self.next_cursor = page.next_cursor or ""
        self.loaded = True
        return None

    @rx.event
    async def load_more(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                page = await deployments.list_deployments(session, actor=actor, cursor=self.next_cursor,
                                                          include_revoked=self.show_revoked)
                self.deployments = self.deployments + await _rows(session, actor, list(page.items))
        except NotSignedIn:
            return rx.redirect("/login")
        self.next_cursor = page.next_cursor or ""
        return None

    @rx.event
    async def remove(self, deployment_id: str) -> Any:
        return await self._change(
            lambda session, actor: deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id),
            "Deployment removed", self.load)


# Shown once, after the click that made the link (issue 15 §4: a one-time link must not come back).
ONE_TIME_VARS = ("link", "link_qr")


class SmithDeploymentsState(AuthState):
    """The Deployments tab of /smiths/<id>: create a one-time link for each channel that starts from one
    (a Telegram deep link, an Add-to-Slack install link), an MCP endpoint; see and remove bindings."""

    items: list[dict[str, str]] = []
    # One per channel with a link mode: kind, name, mode, button label and id, connected ("yes" or ""), via,
    # and the id of the notice shown while the channel is not connected; where the channel can mint a smith
    # its own app (Slack), ``factory`` (app_factory) and ``factory_error`` (its token could not be renewed).
    offers: list[dict[str, str]] = []
    link: str = ""
    link_qr: str = ""
    link_expires: str = ""
    link_mode: str = ""  # start_token, oauth_install or provision: what the link card says about the link
    link_app: str = ""  # provision: the name of the smith's own app the link installs
    link_name: str = ""  # the channel's display name
    link_text: str = ""  # start_token: what opening the link does
    busy: bool = False

    def _smith_id(self) -> str:
        parts = self.router.url.path.rstrip("/").split("/")
        return parts[2] if len(parts) > 2 else ""


    async def _offers(self, session: AsyncSession, actor: Actor) -> list[dict[str, str]]:
        offers = []
        for kind, cls in REGISTRY.items():
            mode = link_mode(kind) or ("provision" if address_factory(cls) else None)
            if mode is None:
                continue
            integration = await integrations.find_integration(session, project_id=actor.project_id, kind=kind)
            public = integration.public if integration else {}
            if mode == "provision":  # an address of the smith's own (an email inbox on the connected domain)
                offers.append(address_offer(cls, public, connected=integration is not None))
                continue
            via = f"via @{public['bot_username']}" if public.get("bot_username") else ""
            if integration is not None and cls.per_installation:
                installed = [row.name or row.external_id
                             for row in await list_installations(session, integration_id=integration.id)
                             if row.status == "active"]
                via = f"installed in {', '.join(installed)}" if installed else ""
            offers.append({"kind": kind, "name": cls.display_name, "mode": mode,
                           "label": LINK_BUTTONS[mode].format(name=cls.display_name),
                           "button_id": f"create-{kind}-link", "notice_id": f"connect-{kind}-first",
                           "connected": "yes" if integration else "", "via": via,
                           "factory": app_factory(cls, public) if integration else "",
                           "factory_error": str(public.get("credentials_error") or ""),
                           "app_button_id": f"create-{kind}-app", "factory_hint_id": f"{kind}-factory-hint"})
        return offers

    async def _refresh(self, session: AsyncSession, actor: Actor) -> None:
        page = await deployments.list_deployments(session, actor=actor, target_id=self._smith_id(), limit=200,
                                                  include_revoked=False)
        self.items = await _rows(session, actor, list(page.items))
        self.offers = await self._offers(session, actor)

    def _clear_link(self) -> None:
        self.link, self.link_qr, self.link_expires, self.link_mode, self.link_name = "", "", "", "", ""
        self.link_text, self.link_app = "", ""

    @rx.event
    async def load(self) -> Any:
        self._clear_link()
        try:
            async with self.signed_in() as (session, actor):
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError:
            self.items = []
        return None

    def _show_link(self, deployment: Deployment, link: str) -> None:
        view = DeploymentView.of(deployment, link=link)
        self.link = view.deep_link or ""
        self.link_qr = qr_data_uri(self.link) if self.link else ""
        self.link_expires = (view.deep_link_expires_at or "")[:16].replace("T", " ")
        self.link_mode = str(deployment.setup.get("mode") or link_mode(deployment.kind) or "")
        self.link_app = (deployment.display_name or "") if self.link_mode == "provision" else ""
        cls = REGISTRY.get(deployment.kind)
        self.link_name = cls.display_name if cls else deployment.kind
        self.link_text = LINK_EXPLAINED.get(deployment.kind,
                                            f"Opening it in {self.link_name} binds their account to this smith.")
        if cls is not None and cls.reply_window is not None:  # so the window beside the address is no surprise
            hours = int(cls.reply_window.total_seconds() // 3600)
            self.link_text += (f" {self.link_name} lets the smith write to them only within {hours} hours of "
                               "their last message.")

    async def _create(self, body: DeploymentCreate, success: str) -> Any:
        """Create one of this smith's deployments, refresh the tab, and say how it went."""
        self.busy = True
        try:
            async with self.signed_in() as (session, actor):
                deployment, link = await deployments.create_deployment(session, actor=actor, body=body)
                if link is not None:
                    self._show_link(deployment, link)
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        finally:
            self.busy = False
        return rx.toast.success(success)

    @rx.event
    async def create_link(self, kind: str) -> Any:
        """A deployment of ``kind`` waiting for its one-time link (a deep link, an install link) to be opened."""
        mode = link_mode(kind)
        if mode is None:
            return rx.toast.error(f"{kind} deployments do not start from a link")
        body = DeploymentCreate(target=Target(type="smith", id=self._smith_id()), kind=kind,  # type: ignore[arg-type]
                                setup={"mode": mode})
        return await self._create(body, LINK_CREATED[mode])

    @rx.event
    async def create_mcp_endpoint(self) -> Any:
        """MCP-1: an endpoint any MCP client can use with a bearer token; active at once."""
        body = DeploymentCreate(target=Target(type="smith", id=self._smith_id()), kind="mcp")
        return await self._create(body, "MCP endpoint created: copy its URL or a client configuration below")

    @rx.event
    async def new_link(self, deployment_id: str) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                deployment, link = await deployments.new_deep_link(session, actor=actor, deployment_id=deployment_id)
                self._show_link(deployment, link)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        return rx.toast.success("New link created; the previous one no longer works")

    def _row(self, deployment_id: str) -> dict[str, str]:
        return next((row for row in self.items if row["id"] == deployment_id), {})

    @rx.event
    async def remove(self, deployment_id: str) -> Any:
        row = self._row(deployment_id)
        try:
            async with self.signed_in() as (session, actor):
                await deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id)
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self._clear_link()
        done = REMOVED.get(row.get("kind", ""), "Deployment removed")
        return rx.toast.success(done.format(address=row.get("address", "")))


def _snapshot_without_one_time_links(self: SmithDeploymentsState, include_computed: bool = True,
                                     initial: bool = False, **kwargs: Any) -> dict[str, Any]:
    """A full snapshot (Reflex sends one at every page load and reconnect, for every state) never holds
    the one-time link: it reaches the browser once, in the delta answering the click that made it."""
    found: dict[str, Any] = rx.State.dict(self, include_computed=include_computed, initial=initial, **kwargs)
    mine = found.get(self.get_full_name(), {})
    for name in ONE_TIME_VARS:
        if name + FIELD_MARKER in mine:
            mine[name + FIELD_MARKER] = ""
    return found


# Set after the class is built: Reflex takes every method defined in a state's body for an event handler.
SmithDeploymentsState.dict = _snapshot_without_one_time_links  # type: ignore[method-assign]
