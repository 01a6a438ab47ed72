"""Deployments: the project-wide list (CON-1) and a smith's Deployments tab (CON-2), where a smith's own app
(a dedicated Slack app, an email inbox) is renamed in place."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.constants.state import FIELD_MARKER
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import deployments, integrations
from app.services.actors import Actor
from app.services.deployments import DeploymentCreate, DeploymentView, Target
from app.services.errors import DomainError
from app.services.installations import list_installations
from app.services.qr import qr_data_uri
from app.state.auth import AuthState, NotSignedIn, describe
from app.state.deployment_rows import (
    LINK_BUTTONS,
    LINK_CREATED,
    LINK_EXPLAINED,
    REMOVED,
    _rows,
    address_factory,
    address_offer,
    app_factory,
    link_mode,
)
from channels import REGISTRY
from models import Deployment


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
