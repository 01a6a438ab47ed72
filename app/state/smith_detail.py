"""A smith's page: header facts and its memory; each tab has its own state module."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.services import agents, memory, smiths
from app.services.errors import DomainError
from app.services.memory import MemoryView
from app.services.pagination import MAX_LIMIT
from app.services.smiths import SmithView
from app.state.auth import AuthState, NotSignedIn, describe


class SmithDetailState(AuthState):
    smith: dict[str, str] = {}
    memory_entries: list[dict[str, str]] = []
    not_found: bool = False

    @rx.var
    def page_smith_id(self) -> str:
        """The id in /smiths/<id> (read from the URL path)."""
        parts = self.router.url.path.rstrip("/").split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "smiths" else ""

    @rx.event
    async def load(self) -> Any:
        self.not_found = False
        try:
            async with self.signed_in() as (session, actor):
                smith = await smiths.get_smith(session, actor=actor, smith_id=self.page_smith_id)
                agent = await agents.get_agent(session, actor=actor, agent_id=smith.agent_id)
                entries = (await memory.list_memory(session, actor=actor, smith_id=smith.id,
                                                    limit=MAX_LIMIT)).items  # the newest page
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError:
            self.not_found = True
            return None
        view = SmithView.of(smith)
        self.smith = {"id": view.id, "name": view.name, "agent_id": agent.id, "agent_name": agent.name,
                      "created_at": view.created_at[:16].replace("T", " "),
                      "provider_identity": view.provider_identity or ""}
        self.memory_entries = [MemoryView.of(e).model_dump() for e in sorted(entries, key=lambda e: e.key)]
        return None

    @rx.event
    async def delete_memory(self, key: str) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                await memory.delete_memory(session, actor=actor, smith_id=self.page_smith_id, key=key)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        await self.load()
        return rx.toast.success(f"Forgot “{key}”")
