"""Events page: the project's feed, newest first, filterable by type."""

from __future__ import annotations

import json
from typing import Any

import reflex as rx

from app.services import events
from app.services.events import EventView
from app.state.auth import AuthState, NotSignedIn


def _row(view: EventView) -> dict[str, str]:
    return {"id": view.id, "type": view.type, "data": json.dumps(view.data, ensure_ascii=False),
            "smith_id": view.smith_id or "", "created_at": view.created_at[:19].replace("T", " ")}


class EventsState(AuthState):
    events: list[dict[str, str]] = []
    type_filter: str = ""
    next_cursor: str = ""
    loaded: bool = False

    async def _page(self, cursor: str | None) -> Any:
        async with self.signed_in() as (session, actor):
            return await events.list_events(session, actor=actor, type=self.type_filter or None,
                                            cursor=cursor)

    @rx.event
    async def load(self) -> Any:
        try:
            page = await self._page(None)
        except NotSignedIn:
            return rx.redirect("/login")
        self.events = [_row(EventView.of(e)) for e in page.items]
        self.next_cursor = page.next_cursor or ""
        self.loaded = True
        return None

    @rx.event
    async def load_more(self) -> Any:
        try:
            page = await self._page(self.next_cursor)
        except NotSignedIn:
            return rx.redirect("/login")
        self.events = self.events + [_row(EventView.of(e)) for e in page.items]
        self.next_cursor = page.next_cursor or ""
        return None

    @rx.event
    async def filter_type(self, value: str) -> Any:
        self.type_filter = "" if value == "all" else value
        return await self.load()
