"""A smith's Schedules tab (CON-3): list, create/edit with validation as you type, pause, run now,
delete; all through ``app.services.schedules``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import console_auth, schedules
from app.services.actors import Actor
from app.services.errors import DomainError, Invalid
from app.services.routing import Conversation
from app.services.runs import InputMessage
from app.services.runtime import transaction
from app.services.schedules import FireTime, ScheduleCreate, ScheduleUpdate, ScheduleView
from app.state.auth import AuthState, NotSignedIn, describe
from app.state.live import RunChanges

log = logging.getLogger("ingram.console")

ACTIVE = {"queued", "running", "awaiting_approval"}
WATCH_MAX_S = 120.0
DEFAULT_CRON = "0 8 * * *"


def _when(fire: FireTime) -> str:
    local, utc = datetime.fromisoformat(fire.local), datetime.fromisoformat(fire.utc)
    text = local.strftime("%a %-d %b, %H:%M")
    return text if local.utcoffset() == utc.utcoffset() else f"{text} ({utc.strftime('%H:%M')} UTC)"


def _message(view: ScheduleView) -> str:
    users = [m.get("content", "") for m in view.input if m.get("role") == "user"]
    return str(users[-1]) if users else ""


AUTO = "auto"  # the select's value for "the most recently active conversation" (SCH-2's default)


def _conversation_label(conversation: Conversation) -> str:
    return f"{conversation.kind.capitalize()} · {conversation.address}"


def _delivers_to(view: ScheduleView, conversations: list[Conversation]) -> str:
    if not conversations:
        return "Stays on the run (no conversation bound)"
    named = next((c for c in conversations if c.deployment_id == view.deployment_id), None)
    if named is not None:
        return _conversation_label(named)
    return f"Most recently active: {_conversation_label(conversations[0])}"


def _row(view: ScheduleView, conversations: list[Conversation]) -> dict[str, str]:
    fires = [_when(f) for f in view.next_fires]
    return {
        "delivers_to": _delivers_to(view, conversations), "deployment_id": view.deployment_id or AUTO,
        "id": view.id, "name": view.name, "cron": view.cron, "timezone": view.timezone,
        "description": view.description, "enabled": "true" if view.enabled else "false",
        "next_fire": fires[0] if fires else "Paused", "later_fires": " · ".join(fires[1:]),
        "last_run_id": view.last_run_id or "", "last_run_status": view.last_run_status or "",
        "message": _message(view), "messages": str(len(view.input)),
    }


async def _schedule_rows(session: AsyncSession, actor: Actor,
                         smith_id: str) -> tuple[list[dict[str, str]], list[Conversation]]:
    """The tab's rows, and the smith's conversations they may deliver to."""
    page = await schedules.list_schedules(session, actor=actor, smith_id=smith_id, limit=200)
    conversations = await schedules.delivery_options(session, actor=actor, smith_id=smith_id)
    return [_row(v, conversations) for v in await schedules.views(session, list(page.items))], conversations


class SchedulesState(AuthState):
    schedules: list[dict[str, str]] = []
    loaded: bool = False
    dialog_open: bool = False
    editing_id: str = ""
    form_name: str = ""
    form_cron: str = DEFAULT_CRON
    form_timezone: str = "UTC"
    form_message: str = ""
    form_note: str = ""
    form_error: str = ""
    cron_error: str = ""
    timezone_error: str = ""
    preview_description: str = ""
    preview_fires: list[str] = []
    # Where replies go (SCH-2): the smith's live conversations, and the form's choice (AUTO or a deployment id).
    conversations: list[dict[str, str]] = []
    form_deployment: str = AUTO
    watch_generation: int = 0

    def _smith_id(self) -> str:
        return str(self.router.page.params.get("smith_id", ""))

    async def _rows(self, session: AsyncSession, actor: Actor) -> list[dict[str, str]]:
        rows, conversations = await _schedule_rows(session, actor, self._smith_id())
        self.conversations = [{"id": c.deployment_id, "label": _conversation_label(c)} for c in conversations]
        return rows

    @rx.event
    async def load(self) -> Any:
        self.loaded = False
        try:
            async with self.signed_in() as (session, actor):
                self.schedules = await self._rows(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError:  # no such smith: the smith page says so
            self.schedules = []
        self.loaded = True
        return self._maybe_watch()

    def _maybe_watch(self) -> Any:
        if any(r["last_run_status"] in ACTIVE for r in self.schedules):
            self.watch_generation += 1
            return SchedulesState.watch
        return None

    @rx.event(background=True)
    async def watch(self) -> None:
        """Follow the last runs' statuses while any is active (a Run now shows queued -> completed), re-read
        when one of them changes (app/state/live.py)."""
        async with self:
            generation, token, smith_id = self.watch_generation, self.session_token, self._smith_id()
            rows = self.schedules
        changes = RunChanges()
        deadline = asyncio.get_running_loop().time() + WATCH_MAX_S
        try:
            while asyncio.get_running_loop().time() < deadline:
                changes.watch(r["last_run_id"] for r in rows if r["last_run_status"] in ACTIVE)
                await changes.next()
                try:
                    async with _console(token) as (session, actor):
                        rows, _ = await _schedule_rows(session, actor, smith_id)
                except (NotSignedIn, DomainError):
                    return
                except Exception:  # a passing database error must not end the page's updates
                    log.exception("refreshing schedules failed")
                    continue
                async with self:
                    if self.watch_generation != generation or self._smith_id() != smith_id:
                        return
                    self.schedules = rows
                if not any(r["last_run_status"] in ACTIVE for r in rows):
                    return
        finally:
            changes.close()

    # the dialog

    @rx.event
    def open_create(self) -> None:
        self.editing_id = ""
        self.form_name, self.form_cron, self.form_timezone, self.form_message = "", DEFAULT_CRON, "UTC", ""
        self.form_note, self.form_deployment = "", AUTO
        self._validate()
        self.dialog_open = True

    @rx.event
    def open_edit(self, row: dict[str, str]) -> None:
        self.editing_id = row["id"]
        self.form_name, self.form_cron, self.form_timezone = row["name"], row["cron"], row["timezone"]
        self.form_message, self.form_deployment = row["message"], row["deployment_id"]
        self.form_note = ("" if row["messages"] == "1" else
                          f"This schedule sends {row['messages']} messages; changing the text replaces them with one.")
        self._validate()
        self.dialog_open = True

    @rx.event
    def set_form_deployment(self, value: str) -> None:
        self.form_deployment = value

    @rx.event
    def set_dialog_open(self, value: bool) -> None:
        self.dialog_open = value

    @rx.event
    def set_form_name(self, value: str) -> None:
        self.form_name = value

    @rx.event
    def set_form_message(self, value: str) -> None:
        self.form_message = value

    @rx.event
    def set_form_cron(self, value: str) -> None:
        self.form_cron = value
        self._validate()

    @rx.event
    def set_form_timezone(self, value: str) -> None:
        self.form_timezone = value.strip()
        self._validate()

    def _validate(self) -> None:
        """The service's own checks, as the person types: the error, or what it means and when it fires."""
        self.form_error = ""
        self.cron_error = self._problem(schedules.check_cron, self.form_cron.strip())
        self.timezone_error = self._problem(schedules.check_timezone, self.form_timezone)
        self.preview_description, self.preview_fires = "", []
        if not self.cron_error and not self.timezone_error:
            found = schedules.preview(self.form_cron.strip(), self.form_timezone)
            self.preview_description = found.description
            self.preview_fires = [_when(f) for f in found.next_fires]

    @staticmethod
    def _problem(check: Any, value: str) -> str:
        try:
            check(value)
        except Invalid as exc:
            return exc.message
        return ""

    def _chosen_deployment(self) -> str | None:
        return None if self.form_deployment == AUTO else self.form_deployment

    @rx.event
    async def save(self) -> Any:
        self._validate()
        if self.cron_error or self.timezone_error:
            return None
        try:
            async with self.signed_in() as (session, actor):
                if self.editing_id:
                    current = next((r for r in self.schedules if r["id"] == self.editing_id), {})
                    changed_text = self.form_message != current.get("message")
                    body = ScheduleUpdate(name=self.form_name, cron=self.form_cron, timezone=self.form_timezone,
                                          input=[InputMessage(role="user", content=self.form_message)]
                                          if changed_text else None, deployment_id=self._chosen_deployment())
                    await schedules.update_schedule(session, actor=actor, smith_id=self._smith_id(),
                                                    schedule_id=self.editing_id, body=body)
                else:
                    body_new = ScheduleCreate(name=self.form_name, cron=self.form_cron, timezone=self.form_timezone,
                                              input=[InputMessage(role="user", content=self.form_message)],
                                              deployment_id=self._chosen_deployment())
                    await schedules.create_schedule(session, actor=actor, smith_id=self._smith_id(), body=body_new)
        except NotSignedIn:
            return rx.redirect("/login")
        except (ValidationError, DomainError) as exc:
            self.form_error = _describe(exc)
            return None
        self.dialog_open = False
        message = "Schedule saved" if self.editing_id else f"Schedule “{self.form_name.strip()}” created"
        await self.load()
        return rx.toast.success(message)

    # row actions

    @rx.event
    async def set_enabled(self, schedule_id: str, enabled: bool) -> Any:
        smith_id = self._smith_id()
        return await self._change(
            lambda session, actor: schedules.update_schedule(session, actor=actor, smith_id=smith_id,
                                                             schedule_id=schedule_id,
                                                             body=ScheduleUpdate(enabled=enabled)),
            "Schedule resumed: it fires from its next time on" if enabled else "Schedule paused", self.load)

    @rx.event
    async def run_now(self, schedule_id: str) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                await schedules.run_now(session, actor=actor, smith_id=self._smith_id(), schedule_id=schedule_id)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        watch = await self.load()
        return [rx.toast.success("Run started"), watch] if watch else rx.toast.success("Run started")

    @rx.event
    async def delete(self, schedule_id: str) -> Any:
        smith_id = self._smith_id()
        return await self._change(
            lambda session, actor: schedules.delete_schedule(session, actor=actor, smith_id=smith_id,
                                                             schedule_id=schedule_id),
            "Schedule deleted", self.load)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = str(first.get("loc", ("",))[0])
        label = {"input": "Message", "name": "Name"}.get(where, where)
        return f"{label}: {str(first.get('msg', 'invalid value')).removeprefix('Value error, ')}"
    return describe(exc)


@contextlib.asynccontextmanager
async def _console(session_token: str) -> AsyncIterator[tuple[AsyncSession, Actor]]:
    """``signed_in`` for the background watcher, which must not hold the state lock while it reads."""
    async with transaction() as session:
        actor = await console_auth.actor_for_session(session, session_token)
        if actor is None:
            raise NotSignedIn
        yield session, actor
