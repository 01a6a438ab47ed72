"""Agents page: list, create, edit, delete through ``app.services.agents``."""

from __future__ import annotations

from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.services import agents
from app.services.agents import AgentCreate, AgentUpdate, AgentView, ModelSettings
from app.services.errors import DomainError
from app.state.auth import AuthState, NotSignedIn, describe

PROVIDERS = ["default", "builtin", "openai", "anthropic"]


def _row(view: AgentView) -> dict[str, str]:
    return {
        "id": view.id,
        "name": view.name,
        "instructions": view.instructions,
        "provider": view.model.provider or "default",
        "model_name": view.model.name or "",
        "approval_tools": ", ".join(view.approval_required_tools),
        "created_at": view.created_at[:16].replace("T", " "),
    }


def _form_to_fields(form: dict[str, Any]) -> dict[str, Any]:
    provider = str(form.get("provider") or "default")
    tools = [t.strip() for t in str(form.get("approval_tools", "")).replace("\n", ",").split(",")]
    return {
        "name": str(form.get("name", "")).strip(),
        "instructions": str(form.get("instructions", "")),
        "model": ModelSettings(
            provider=None if provider == "default" else provider,  # type: ignore[arg-type]
            name=str(form.get("model_name", "")).strip() or None,
        ),
        "approval_required_tools": [t for t in tools if t],
    }


class AgentsState(AuthState):
    agents: list[dict[str, str]] = []
    next_cursor: str = ""
    loaded: bool = False
    dialog_open: bool = False
    editing_id: str = ""
    form_error: str = ""
    draft: dict[str, str] = {}

    @rx.event
    async def load(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                page = await agents.list_agents(session, actor=actor)
        except NotSignedIn:
            return rx.redirect("/login")
        self.agents = [_row(AgentView.of(a)) for a in page.items]
        self.next_cursor = page.next_cursor or ""
        self.loaded = True
        return None

    @rx.event
    async def load_more(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                page = await agents.list_agents(session, actor=actor, cursor=self.next_cursor)
        except NotSignedIn:
            return rx.redirect("/login")
        self.agents = self.agents + [_row(AgentView.of(a)) for a in page.items]
        self.next_cursor = page.next_cursor or ""
        return None

    @rx.event
    def open_create(self) -> None:
        self.editing_id = ""
        self.form_error = ""
        self.draft = {"name": "", "instructions": "", "provider": "default", "model_name": "",
                      "approval_tools": ""}
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
        try:
            fields = _form_to_fields(form)
            async with self.signed_in() as (session, actor):
                if self.editing_id:
                    await agents.update_agent(session, actor=actor, agent_id=self.editing_id,
                                              body=AgentUpdate(**fields))
                else:
                    await agents.create_agent(session, actor=actor, body=AgentCreate(**fields))
        except NotSignedIn:
            return rx.redirect("/login")
        except (ValidationError, DomainError, ValueError) as exc:
            self.form_error = describe(exc)
            return None
        self.dialog_open = False
        message = "Agent saved" if self.editing_id else f"Agent “{fields['name']}” created"
        await self.load()
        return rx.toast.success(message)

    @rx.event
    async def delete(self, agent_id: str) -> Any:
        return await self._change(lambda session, actor: agents.delete_agent(session, actor=actor, agent_id=agent_id),
                                  "Agent deleted", self.load)
