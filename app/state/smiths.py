"""Smiths page: list, create, rename, delete through ``app.services.smiths``."""

from __future__ import annotations

from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.services import agents, smiths
from app.services.errors import DomainError
from app.services.smiths import SmithCreate, SmithUpdate, SmithView
from app.state.auth import AuthState, NotSignedIn, describe


class SmithsState(AuthState):
    smiths: list[dict[str, str]] = []
    agent_options: list[dict[str, str]] = []
    next_cursor: str = ""
    loaded: bool = False
    dialog_open: bool = False
    editing_id: str = ""
    form_error: str = ""
    draft: dict[str, str] = {}

    def _rows(self, items: list[Any]) -> list[dict[str, str]]:
        names = {a["id"]: a["name"] for a in self.agent_options}
        rows = []
        for smith in items:
            view = SmithView.of(smith)
            rows.append({
                "id": view.id, "name": view.name, "agent_id": view.agent_id,
                "agent_name": names.get(view.agent_id, view.agent_id),
                "origin": "minted by a deployment" if view.minted_by_deployment_id else "created",
                "created_at": view.created_at[:16].replace("T", " "),
            })
        return rows

    @rx.event
    async def load(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                agent_page = await agents.list_agents(session, actor=actor, limit=200)
                self.agent_options = [{"id": a.id, "name": a.name} for a in agent_page.items]
                page = await smiths.list_smiths(session, actor=actor)
                self.smiths = self._rows(list(page.items))
        except NotSignedIn:
            return rx.redirect("/login")
        self.next_cursor = page.next_cursor or ""
        self.loaded = True
        return None

    @rx.event
    async def load_more(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                page = await smiths.list_smiths(session, actor=actor, cursor=self.next_cursor)
                self.smiths = self.smiths + self._rows(list(page.items))
        except NotSignedIn:
            return rx.redirect("/login")
        self.next_cursor = page.next_cursor or ""
        return None

    @rx.event
    def open_create(self) -> None:
        self.editing_id = ""
        self.form_error = ""
        first = self.agent_options[0]["id"] if self.agent_options else ""
        self.draft = {"name": "", "agent_id": first}
        self.dialog_open = True

    @rx.event
    def open_edit(self, row: dict[str, str]) -> None:
        self.editing_id = row["id"]
        self.form_error = ""
        self.draft = dict(row)
        self.dialog_open = True

    @rx.event
    def set_dialog_open(self, value: bool) -> None:
        self.dialog_open = value

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self.form_error = ""
        name = str(form.get("name", "")).strip()
        try:
            async with self.signed_in() as (session, actor):
                if self.editing_id:
                    await smiths.update_smith(session, actor=actor, smith_id=self.editing_id,
                                              body=SmithUpdate(name=name))
                else:
                    body = SmithCreate(agent_id=str(form.get("agent_id", "")), name=name)
                    await smiths.create_smith(session, actor=actor, body=body)
        except NotSignedIn:
            return rx.redirect("/login")
        except (ValidationError, DomainError) as exc:
            self.form_error = describe(exc)
            return None
        self.dialog_open = False
        await self.load()
        return rx.toast.success("Smith saved" if self.editing_id else f"Smith “{name}” created")

    @rx.event
    async def delete(self, smith_id: str) -> Any:
        return await self._change(lambda session, actor: smiths.delete_smith(session, actor=actor, smith_id=smith_id),
                                  "Smith deleted", self.load)
