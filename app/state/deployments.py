"""Deployments: the project-wide list (CON-1) and a smith's Deployments tab (CON-2)."""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import deployments, integrations
from app.services.actors import Actor
from app.services.deployments import DeploymentCreate, DeploymentView, Target
from app.services.errors import DomainError
from app.services.mcp import client_config, desktop_config
from app.services.qr import qr_data_uri
from app.state.auth import AuthState, NotSignedIn, describe
from models import Agent, Deployment, Smith


async def _rows(session: AsyncSession, items: list[Deployment]) -> list[dict[str, str]]:
    rows = []
    for deployment in items:
        view = DeploymentView.of(deployment)
        model = Smith if view.target.type == "smith" else Agent
        target = await session.get(model, view.target.id)
        rows.append({
            "id": view.id, "kind": view.kind, "status": view.status, "address": view.address or "—",
            "target_type": view.target.type, "target_id": view.target.id,
            "target_name": getattr(target, "name", view.target.id),
            "target_href": f"/smiths/{view.target.id}" if view.target.type == "smith" else "/agents",
            "owner": view.owner_identity or "", "created_at": view.created_at[:16].replace("T", " "),
            # Why and when a revoked one stopped answering ("replaced · 2026-12-04 06:10").
            "revoked_note": f"{view.revoked_reason or 'revoked'} · {(view.revoked_at or '')[:16].replace('T', ' ')}"
            if view.status == "revoked" else "",
            # MCP endpoints: the URL and ready-to-paste client configurations (token left as a placeholder).
            "endpoint_url": view.endpoint_url or "",
            "client_config": client_config(view.endpoint_url, getattr(target, "name", "")) if view.endpoint_url else "",
            "desktop_config": desktop_config(view.endpoint_url, getattr(target, "name", ""))
            if view.endpoint_url else "",
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
                self.deployments = await _rows(session, list(page.items))
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
                self.deployments = self.deployments + await _rows(session, list(page.items))
        except NotSignedIn:
            return rx.redirect("/login")
        self.next_cursor = page.next_cursor or ""
        return None

    @rx.event
    async def remove(self, deployment_id: str) -> Any:
        return await self._change(
            lambda session, actor: deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id),
            "Deployment removed", self.load)


class SmithDeploymentsState(AuthState):
    """The Deployments tab of /smiths/<id>: create a Telegram deep link, see and remove bindings."""

    items: list[dict[str, str]] = []
    telegram_connected: bool = False
    bot_username: str = ""
    link: str = ""
    link_qr: str = ""
    link_expires: str = ""
    busy: bool = False

    def _smith_id(self) -> str:
        parts = self.router.url.path.rstrip("/").split("/")
        return parts[2] if len(parts) > 2 else ""

    async def _refresh(self, session: AsyncSession, actor: Actor) -> None:
        page = await deployments.list_deployments(session, actor=actor, target_id=self._smith_id(), limit=200,
                                                  include_revoked=False)
        self.items = await _rows(session, list(page.items))
        telegram = await integrations.find_integration(session, project_id=actor.project_id, kind="telegram")
        self.telegram_connected = telegram is not None
        self.bot_username = (telegram.public.get("bot_username") or "") if telegram else ""

    @rx.event
    async def load(self) -> Any:
        self.link, self.link_qr, self.link_expires = "", "", ""
        try:
            async with self.signed_in() as (session, actor):
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError:
            self.items = []
        return None

    def _show_link(self, view: DeploymentView) -> None:
        self.link = view.deep_link or ""
        self.link_qr = qr_data_uri(self.link) if self.link else ""
        self.link_expires = (view.deep_link_expires_at or "")[:16].replace("T", " ")

    async def _create(self, body: DeploymentCreate, success: str) -> Any:
        """Create one of this smith's deployments, refresh the tab, and say how it went."""
        self.busy = True
        try:
            async with self.signed_in() as (session, actor):
                deployment, link = await deployments.create_deployment(session, actor=actor, body=body)
                if link is not None:
                    self._show_link(DeploymentView.of(deployment, link=link))
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        finally:
            self.busy = False
        return rx.toast.success(success)

    @rx.event
    async def create_telegram_link(self) -> Any:
        body = DeploymentCreate(target=Target(type="smith", id=self._smith_id()), kind="telegram",
                                setup={"mode": "start_token"})
        return await self._create(body, "Deep link created: send it to the person, or scan it")

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
                self._show_link(DeploymentView.of(deployment, link=link))
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        return rx.toast.success("New link created; the previous one no longer works")

    @rx.event
    async def remove(self, deployment_id: str) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                await deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id)
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self.link, self.link_qr = "", ""
        return rx.toast.success("Deployment removed")
