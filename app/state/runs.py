"""Runs page: every run of the project, filterable, refreshed live while any listed run is active."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import console_auth, runs, smiths
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.runs import RunView
from app.services.runtime import transaction
from app.state.auth import AuthState, NotSignedIn, describe
from app.state.live import RunChanges

log = logging.getLogger("ingram.console")

ACTIVE = frozenset({"queued", "running", "awaiting_approval"})
PAGE_SIZE = 50
MAX_REFRESH = 200  # the services' page limit: live refresh re-reads at most this many rows
MAX_FAILURES = 30  # consecutive failed refreshes before a watcher gives up (Refresh starts it again)
MAX_SMITHS = 1000
ALL = "all"  # the select's value for "no filter" (Radix selects refuse an empty value)


def first_line(text: str, limit: int = 120) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def input_text(view: RunView) -> str:
    """The message that started the run: the last user message of its input."""
    users = [str(m.get("content", "")) for m in view.input if m.get("role") == "user"]
    return users[-1] if users else ""


def outcome(view: RunView) -> str:
    if view.status == "completed":
        return first_line(view.output.text or "", 140) or "(no text)"
    if view.status == "failed":
        return first_line(f"Error: {(view.error or {}).get('message', 'failed')}", 140)
    return {"queued": "Waiting for a worker…", "running": "Working…",
            "awaiting_approval": "Waiting for approval", "cancelled": "Cancelled"}.get(view.status, "")


def when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def run_row(view: RunView, smith_names: dict[str, str]) -> dict[str, str]:
    return {
        "id": view.id, "status": view.status, "source": view.source, "smith_id": view.smith_id,
        "smith_name": smith_names.get(view.smith_id, view.smith_id), "created_at": when(view.created_at),
        "input": first_line(input_text(view)) or "(empty)", "output": outcome(view),
    }


async def client_connected(token: str) -> bool:
    """Whether the browser tab behind ``token`` still has its socket (on any server process)."""
    try:
        from reflex_base.registry import RegistrationContext

        namespace = RegistrationContext.get().app.event_namespace
    except (ImportError, LookupError, AttributeError):
        return True
    if namespace is None:
        return True
    manager = getattr(namespace, "_token_manager", None)
    if manager is not None and hasattr(manager, "is_token_connected"):
        return bool(await manager.is_token_connected(token))
    return token in namespace.token_to_sid


@contextlib.asynccontextmanager
async def console_actor(session_token: str) -> AsyncIterator[tuple[AsyncSession, Actor]]:
    """Like ``AuthState.signed_in`` for background tasks, which read the cookie under the state lock
    and must not hold that lock while they wait on the database."""
    async with transaction() as session:
        actor = await console_auth.actor_for_session(session, session_token)
        if actor is None:
            raise NotSignedIn
        yield session, actor


async def smith_names(session: AsyncSession, actor: Actor) -> dict[str, str]:
    names: dict[str, str] = {}
    cursor: str | None = None
    while len(names) < MAX_SMITHS:
        page = await smiths.list_smiths(session, actor=actor, limit=200, cursor=cursor)
        names.update({s.id: s.name for s in page.items})
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return names


class RunsState(AuthState):
    runs: list[dict[str, str]] = []
    next_cursor: str = ""
    loaded: bool = False
    status_filter: str = ALL
    source_filter: str = ALL
    smith_filter: str = ALL
    smith_options: list[dict[str, str]] = []
    live: bool = False  # a watcher is refreshing the list
    watch_generation: int = 0

    @rx.var
    def filtered(self) -> bool:
        return self.status_filter != ALL or self.source_filter != ALL or self.smith_filter != ALL

    @rx.var
    def any_active(self) -> bool:
        return any(r["status"] in ACTIVE for r in self.runs)

    def _filters(self) -> dict[str, str | None]:
        return {"status": None if self.status_filter == ALL else self.status_filter,
                "source": None if self.source_filter == ALL else self.source_filter,
                "smith_id": None if self.smith_filter == ALL else self.smith_filter}

    async def _fetch(self, *, cursor: str | None = None, limit: int = PAGE_SIZE) -> tuple[list[dict[str, str]], str]:
        async with self.signed_in() as (session, actor):
            names = await smith_names(session, actor)
            page = await runs.list_runs(session, actor=actor, limit=limit, cursor=cursor, **self._filters())
        self.smith_options = [{"id": k, "name": v} for k, v in sorted(names.items(), key=lambda kv: kv[1].lower())]
        return [run_row(RunView.of(r), names) for r in page.items], page.next_cursor or ""

    @rx.event
    async def load(self) -> Any:
        """On page load: ``?smith_id=`` preselects the smith filter (the smith page links here)."""
        wanted = str(self.router.url.query_parameters.get("smith_id", "")).strip()
        self.smith_filter = wanted or ALL
        return await self._reload()

    async def _reload(self) -> Any:
        try:
            self.runs, self.next_cursor = await self._fetch()
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self.loaded = True
        return self._maybe_watch()

    def _maybe_watch(self) -> Any:
        if any(r["status"] in ACTIVE for r in self.runs):
            self.watch_generation += 1
            return RunsState.watch
        self.live = False
        return None

    @rx.event
    async def refresh(self) -> Any:
        return await self._reload()

    @rx.event
    async def load_more(self) -> Any:
        try:
            more, self.next_cursor = await self._fetch(cursor=self.next_cursor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        known = {r["id"] for r in self.runs}
        self.runs = self.runs + [r for r in more if r["id"] not in known]
        return self._maybe_watch()

    @rx.event
    async def set_status_filter(self, value: str) -> Any:
        self.status_filter = value or ALL
        return await self._reload()

    @rx.event
    async def set_source_filter(self, value: str) -> Any:
        self.source_filter = value or ALL
        return await self._reload()

    @rx.event
    async def set_smith_filter(self, value: str) -> Any:
        self.smith_filter = value or ALL
        return await self._reload()

    @rx.event
    async def clear_filters(self) -> Any:
        self.status_filter = self.source_filter = self.smith_filter = ALL
        return await self._reload()

    @rx.event(background=True)
    async def watch(self) -> None:
        """Re-read the listed runs when an active one among them changes (app/state/live.py) while any
        is active.

        Ends when nothing listed is active, when the tab navigates elsewhere or disconnects, or
        when a newer watcher starts (each load bumps ``watch_generation``).
        """
        async with self:
            generation = self.watch_generation
            token = self.router.session.client_token
            self.live = True
        log.debug("runs list watcher %s started", generation)
        failures = 0
        changes = RunChanges()
        try:
            async with self:
                changes.watch(r["id"] for r in self.runs if r["status"] in ACTIVE)
            while failures < MAX_FAILURES:
                await changes.next()
                if not await client_connected(token):
                    return
                async with self:
                    if (self.watch_generation != generation or self.router.route_id != "/runs"
                            or not any(r["status"] in ACTIVE for r in self.runs)):
                        return
                    session_token, filters, shown = self.session_token, self._filters(), [dict(r) for r in self.runs]
                    names = {o["id"]: o["name"] for o in self.smith_options}
                try:
                    async with console_actor(session_token) as (session, actor):
                        page = await runs.list_runs(session, actor=actor, limit=min(max(len(shown), PAGE_SIZE),
                                                                                    MAX_REFRESH), **filters)
                        for smith_id in {r.smith_id for r in page.items} - names.keys():  # created since
                            with contextlib.suppress(DomainError):
                                names[smith_id] = (await smiths.get_smith(session, actor=actor,
                                                                          smith_id=smith_id)).name
                        fresh = [run_row(RunView.of(r), names) for r in page.items]
                        # Rows further down than the refreshed window: re-read only the active ones.
                        seen = {r["id"] for r in fresh}
                        tail = [r for r in shown if r["id"] not in seen]
                        for index, row in enumerate(tail):
                            if row["status"] in ACTIVE:
                                with contextlib.suppress(DomainError):
                                    run = await runs.get_run(session, actor=actor, run_id=row["id"])
                                    tail[index] = run_row(RunView.of(run), names)
                except NotSignedIn:
                    return
                except Exception:  # a passing database error must not kill the page's updates
                    log.exception("refreshing the runs list failed")
                    failures += 1
                    continue
                failures = 0
                merged = sorted(fresh + tail, key=lambda r: r["id"], reverse=True)  # ids sort by creation
                changes.watch(r["id"] for r in merged if r["status"] in ACTIVE)
                async with self:
                    if self.watch_generation != generation:
                        return
                    if merged != self.runs:
                        self.runs = merged
                        if len(shown) <= MAX_REFRESH:
                            self.next_cursor = page.next_cursor or ""
        finally:
            changes.close()
            log.debug("runs list watcher %s ended", generation)
            async with self:
                if self.watch_generation == generation:
                    self.live = False
