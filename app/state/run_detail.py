"""One run: its conversation, events, output and, while it waits, the approval decision."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import runs, smiths
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.runs import Decision, RunEventView, RunView
from app.state.auth import AuthState, NotSignedIn, describe
from app.state.live import RunChanges
from app.state.runs import (
    ACTIVE,
    MAX_FAILURES,
    client_connected,
    console_actor,
    input_text,
    when,
)
from models import Message

log = logging.getLogger("ingram.console")

ROUTE = "/runs/[run_id]"
MAX_TEXT = 4000  # per chat bubble / card; the API has the full text


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pretty(raw: Any) -> str:
    """JSON arguments, indented; tool calls carry them as a string, approvals as an object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            return _clip(raw, 1000)
    return _clip(json.dumps(raw, indent=2, ensure_ascii=False), 2000)


def _sender(content: str) -> str:
    """The platform line, for people: who sent the message and how we know."""
    _, _, raw = content.partition("] sender ")
    try:
        fields = json.loads(raw)
    except ValueError:
        return _clip(content, 300)
    facts = [str(fields.get("channel") or "")]
    facts.append("owner" if fields.get("is_owner") else "not the owner")
    facts.append("verified" if fields.get("verified") else "unverified")
    who = fields.get("display") or fields.get("identity") or "unknown"
    return f"Sender: {who} ({', '.join(f for f in facts if f)})"


def chat_items(messages: list[Message], run_id: str) -> list[dict[str, str]]:
    """Messages as a flat list of chat items: tool calls and results become their own cards."""
    items: list[dict[str, str]] = []
    for message in messages:
        own = "1" if message.run_id == run_id else ""
        base = {"id": message.id, "own": own, "title": "", "content": "", "error": ""}
        if message.role == "system":
            platform = message.name == "platform"
            items.append({**base, "kind": "platform" if platform else "system",
                          "content": _sender(message.content) if platform else _clip(message.content, 600)})
        elif message.role == "tool":
            items.append({**base, "kind": "result", "title": message.name or "tool",
                          "content": _clip(message.content, 1500),
                          "error": "1" if message.content.startswith("error:") else ""})
        elif message.role == "assistant":
            if message.content.strip():
                items.append({**base, "kind": "assistant", "content": _clip(message.content)})
            for call in message.tool_calls or []:
                function = call.get("function", {})
                items.append({**base, "id": f"{message.id}:{call.get('id', '')}", "kind": "call",
                              "title": str(function.get("name", "tool")),
                              "content": _pretty(function.get("arguments", "{}"))})
        else:
            items.append({**base, "kind": "user", "content": _clip(message.content)})
    return items


def event_item(view: RunEventView) -> dict[str, str]:
    data = {k: v for k, v in view.data.items() if k != "run_id"}
    summary = json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    return {"seq": str(view.seq), "type": view.type, "time": view.created_at[11:23],
            "summary": _clip(summary, 400)}


def _sender_meta(sender: Any) -> str:
    if not isinstance(sender, dict):
        return ""
    who = sender.get("display") or sender.get("identity") or ""
    how = ", ".join(p for p in (sender.get("channel"), "owner" if sender.get("is_owner") else "",
                                "verified" if sender.get("verified") else "") if p)
    return f"{who} ({how})" if how else str(who)


async def snapshot_of(session: AsyncSession, actor: Actor, run_id: str) -> dict[str, Any]:
    """Everything the page shows about the run, read in one transaction."""
    run = await runs.get_run(session, actor=actor, run_id=run_id)
    approval = await runs.pending_approval(session, run)
    view = RunView.of(run, approval, admin=actor.is_admin)  # the console's admin sees the upstream detail
    try:
        smith_name = (await smiths.get_smith(session, actor=actor, smith_id=run.smith_id)).name
    except DomainError:
        smith_name = run.smith_id
    messages = await runs.list_run_messages(session, actor=actor, run_id=run_id)
    events = await runs.list_run_events(session, actor=actor, run_id=run_id)
    error = view.error or {}
    meta = view.metadata
    return {
        "run": {
            "id": view.id, "status": view.status, "source": view.source, "smith_id": view.smith_id,
            "smith_name": smith_name, "input": _clip(input_text(view)), "output": view.output.text or "",
            "error_code": str(error.get("code", "")),
            "error_message": " ".join(str(p) for p in (error.get("message"), error.get("detail")) if p),
            "created_at": when(view.created_at), "started_at": when(view.started_at),
            "finished_at": when(view.finished_at), "attempts": str(view.attempts),
        },
        "chips": list(view.output.suggested_replies),
        "metadata": [{"key": k, "value": v} for k, v in (
            ("Sender", _sender_meta(meta.get("sender"))), ("Thread", meta.get("thread_id") or ""),
            ("Deployment", meta.get("deployment_id") or ""), ("Schedule", meta.get("schedule_id") or ""),
            ("Attempts", str(view.attempts)),
        ) if v],
        "usage": [{"key": k.replace("_", " "), "value": str(v)} for k, v in sorted(view.usage.items())],
        "conversation": chat_items(messages, run.id),
        "events": [event_item(RunEventView.of(e)) for e in events],
        "pending": {} if view.pending_approval is None else {
            "id": str(view.pending_approval["id"]), "tool": str(view.pending_approval["tool"]),
            "arguments": _pretty(view.pending_approval["arguments"])},
    }


class RunDetailState(AuthState):
    run: dict[str, str] = {}
    chips: list[str] = []
    metadata: list[dict[str, str]] = []
    usage: list[dict[str, str]] = []
    conversation: list[dict[str, str]] = []
    events: list[dict[str, str]] = []
    pending: dict[str, str] = {}
    not_found: bool = False
    loaded: bool = False
    deciding: bool = False
    edit_open: bool = False
    edit_error: str = ""
    live: bool = False
    watch_generation: int = 0

    @rx.var
    def is_active(self) -> bool:
        return self.run.get("status", "") in ACTIVE

    @rx.var
    def has_earlier_turns(self) -> bool:
        return any(item.get("own") != "1" for item in self.conversation)

    @rx.var
    def awaiting(self) -> bool:
        return self.run.get("status", "") == "awaiting_approval" and bool(self.pending)

    def _url_run_id(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    def _apply(self, snapshot: dict[str, Any]) -> None:
        for key, value in snapshot.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
        if not snapshot["pending"]:
            self.edit_open = False

    def _maybe_watch(self) -> Any:
        if self.run.get("status", "") in ACTIVE:
            self.watch_generation += 1
            return RunDetailState.watch
        self.live = False
        return None

    @rx.event
    async def load(self) -> Any:
        run_id = self._url_run_id()
        if self.run.get("id") != run_id:  # another run than last time: start clean
            self.run, self.conversation, self.events, self.pending, self.chips = {}, [], [], {}, []
            self.loaded = False
        self.not_found = False
        self.edit_open = False
        self.edit_error = ""
        self.deciding = False
        return await self._reload(run_id)

    async def _reload(self, run_id: str) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                snapshot = await snapshot_of(session, actor, run_id)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError:
            self.not_found = True
            self.loaded = True
            return None
        self._apply(snapshot)
        self.loaded = True
        return self._maybe_watch()

    @rx.event
    async def refresh(self) -> Any:
        return await self._reload(self._url_run_id())

    async def _decide(self, decision: Decision) -> list[Any]:
        run_id = self.run.get("id", "")
        try:
            async with self.signed_in() as (session, actor):
                await runs.submit_decision(session, actor=actor, run_id=run_id, decision=decision)
        except NotSignedIn:
            return [rx.redirect("/login")]
        except DomainError as exc:
            return [rx.toast.error(describe(exc)), await self._reload(run_id)]
        finally:
            self.deciding = False
        self.edit_open = False
        self.edit_error = ""
        label = {"approve": "Approved", "reject": "Rejected", "edit": "Correction sent"}[decision.decision]
        return [rx.toast.success(f"{label}; the run continues"), await self._reload(run_id)]

    @rx.event
    async def approve(self) -> AsyncIterator[Any]:
        self.deciding = True
        yield
        yield [e for e in await self._decide(Decision(decision="approve")) if e is not None]

    @rx.event
    async def reject(self) -> AsyncIterator[Any]:
        self.deciding = True
        yield
        yield [e for e in await self._decide(Decision(decision="reject")) if e is not None]

    @rx.event
    async def submit_edit(self, form: dict[str, Any]) -> AsyncIterator[Any]:
        self.edit_error = ""
        try:
            decision = Decision(decision="edit", message=str(form.get("message", "")).strip())
        except ValidationError as exc:
            self.edit_error = describe(exc)
            return
        if not (decision.message or ""):
            self.edit_error = "Write the corrected instruction first."
            return
        self.deciding = True
        yield
        yield [e for e in await self._decide(decision) if e is not None]

    @rx.event
    def set_edit_open(self, value: bool) -> None:
        self.edit_open = value
        self.edit_error = ""

    @rx.event
    async def cancel(self) -> Any:
        run_id = self.run.get("id", "")
        try:
            async with self.signed_in() as (session, actor):
                await runs.cancel_run(session, actor=actor, run_id=run_id)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            await self._reload(run_id)
            return rx.toast.error(describe(exc))
        follow = await self._reload(run_id)
        return [e for e in (rx.toast.success("Run cancelled"), follow) if e is not None]

    @rx.event(background=True)
    async def watch(self) -> None:
        """Re-read the run when it changes (a step or a transition committed: app/state/live.py) while it is
        active; ends when it finishes, when the tab shows another page (or run) or disconnects, or when a
        newer watcher starts."""
        async with self:
            generation = self.watch_generation
            token = self.router.session.client_token
            run_id = self.run.get("id", "")
            self.live = True
        log.debug("run detail watcher %s started", generation)
        failures = 0
        changes = RunChanges()
        changes.watch([run_id])
        try:
            while run_id and failures < MAX_FAILURES:
                await changes.next()
                if not await client_connected(token):
                    return
                async with self:
                    if (self.watch_generation != generation or self.router.route_id != ROUTE
                            or self._url_run_id() != run_id or self.run.get("status", "") not in ACTIVE):
                        return
                    session_token = self.session_token
                try:
                    async with console_actor(session_token) as (session, actor):
                        snapshot = await snapshot_of(session, actor, run_id)
                except (NotSignedIn, DomainError):
                    return
                except Exception:  # a passing database error must not end the live view
                    log.exception("refreshing run %s failed", run_id)
                    failures += 1
                    continue
                failures = 0
                async with self:
                    if self.watch_generation != generation:
                        return
                    if any(getattr(self, key) != value for key, value in snapshot.items()):
                        self._apply(snapshot)
        finally:
            changes.close()
            log.debug("run detail watcher %s ended", generation)
            async with self:
                if self.watch_generation == generation:
                    self.live = False
