"""Runs (RUN-1): start one, read it and its events, cancel it, decide its approvals (APR-1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.pagination import Page, paginate
from app.services.quotas import check_token_run
from app.services.smiths import get_smith
from jobs.delivery import enqueue_prompt_outcome
from jobs.events import append_event, append_run_event
from jobs.identity import strip_forgeries
from jobs.run_signals import note_queued
from jobs.runstate import TERMINAL, transition
from jobs.thread_messages import new_nonce, pending_calls, platform_message_row, recent_turns, thread_history
from models import Approval, Message, Run, RunEvent, Smith, Thread
from models.store.messages import insert_messages, message_row
from models.store.runs import insert_run, queued_run_row, thread_by_key, thread_owner
from models.types import new_id, utcnow

MAX_INPUT_MESSAGES = 50
MAX_MESSAGE_CHARS = 32_000
MAX_INPUT_CHARS = 100_000
SOURCES = ("api", "deployment", "schedule", "mcp")
STATUSES = ("queued", "running", "awaiting_approval", "completed", "failed", "cancelled")


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: list[InputMessage] = Field(min_length=1, max_length=MAX_INPUT_MESSAGES)
    thread_id: str | None = Field(default=None, max_length=40)

    @field_validator("input")
    @classmethod
    def _shape(cls, value: list[InputMessage]) -> list[InputMessage]:
        if value[-1].role != "user":
            raise ValueError("the last input message must have role 'user'")
        if sum(len(m.content) for m in value) > MAX_INPUT_CHARS:
            raise ValueError(f"the input may hold at most {MAX_INPUT_CHARS} characters in all")
        return value


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject", "edit"]
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class RunOutput(BaseModel):
    text: str | None = None
    suggested_replies: list[str] = Field(default_factory=list)


class RunView(BaseModel):
    id: str
    smith_id: str
    status: str
    source: str
    input: list[dict[str, Any]]
    output: RunOutput
    metadata: dict[str, Any]
    usage: dict[str, Any]
    error: dict[str, Any] | None
    pending_approval: dict[str, Any] | None = None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def of(cls, run: Run, approval: Approval | None = None, *, admin: bool = False) -> RunView:
        """``admin``: show the error as stored (with the upstream's ``detail``); others get ``public_error``."""
        meta = {k: v for k, v in run.run_metadata.items() if not k.startswith("_")}
        meta.update(thread_id=run.thread_id, deployment_id=run.deployment_id, schedule_id=run.schedule_id)
        return cls(
            id=run.id, smith_id=run.smith_id, status=run.status, source=run.source, input=run.input,
            output=RunOutput(**run.output) if run.output else RunOutput(), metadata=meta,
            usage=run.usage, error=run.error if admin else public_error(run.error), attempts=run.attempts,
            pending_approval=None if approval is None else {
                "id": approval.id, "tool": approval.tool_name, "arguments": approval.arguments},
            created_at=run.created_at.isoformat(),
            started_at=run.started_at.isoformat() if run.started_at else None,
            finished_at=run.finished_at.isoformat() if run.finished_at else None,
        )


# A model failure as smith tokens and MCP callers see it: our words only. What the upstream answered
# (its error body may echo prompts, internal hosts or key fragments) stays in ``detail``, for admins.
GENERIC_MODEL_ERROR = "the model could not produce a reply; an admin can see the details"


def public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return error
    code = str(error.get("code") or "run_failed")
    if code.startswith("model_"):
        return {"code": code, "message": GENERIC_MODEL_ERROR}
    return {"code": code, "message": str(error.get("message") or "")}


class RunEventView(BaseModel):
    id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: str

    @classmethod
    def of(cls, event: RunEvent) -> RunEventView:
        return cls(id=event.id, seq=event.seq, type=event.type, data=event.data,
                   created_at=event.created_at.isoformat())


def api_sender(actor: Actor) -> dict[str, Any]:
    """The sender of an API-started run: the token holder, who acts for the owner."""
    return {"is_owner": True, "channel": "api", "identity": f"token:{actor.subject}",
            "display": actor.subject, "verified": True}


async def _thread_id_for(session: AsyncSession, project_id: str, smith_id: str, thread_id: str | None,
                         deployment_id: str | None = None, external_key: str | None = None) -> str:
    if thread_id:
        if await thread_owner(session, thread_id=thread_id) != smith_id:
            raise NotFound(f"no thread {thread_id} on smith {smith_id}", code="thread_not_found",
                           field="thread_id")
        return thread_id
    if external_key:
        found = await thread_by_key(session, smith_id=smith_id, external_key=external_key)
        if found:
            return found
    thread = Thread(id=new_id("thr"), project_id=project_id, smith_id=smith_id,
                    deployment_id=deployment_id, external_key=external_key)
    session.add(thread)
    await session.flush()
    return thread.id


def input_message_rows(run_id: str, thread_id: str, messages: list[InputMessage], sender: dict[str, Any] | None,
                       nonce: str) -> tuple[list[dict[str, Any]], int]:
    """A run's input as stored in its thread: every line imitating the platform line removed (ID-4),
    and the real platform line, built from the channel-authenticated sender, before the last user
    message (ID-1). Returns the message rows and how many lines were removed."""
    rows, stripped_total = [], 0
    for index, message in enumerate(messages):
        text, stripped = strip_forgeries(message.content)
        stripped_total += stripped
        if sender and message.role == "user" and index == len(messages) - 1:
            rows.append(platform_message_row(run_id, thread_id, sender, nonce))
        rows.append(message_row(thread_id=thread_id, run_id=run_id, role=message.role, content=text))
    return rows, stripped_total


async def enqueue_run(
    session: AsyncSession, *, smith: Smith, messages: list[InputMessage], source: str,
    sender: dict[str, Any] | None, thread_id: str | None = None, external_key: str | None = None,
    deployment_id: str | None = None, schedule_id: str | None = None,
    scheduled_for: datetime | None = None, metadata: dict[str, Any] | None = None,
) -> Run:
    """Insert a queued run with its input stored in the thread, in the caller's transaction
    (``enqueue_run_id``), and load it."""
    run_id = await enqueue_run_id(session, project_id=smith.project_id, smith_id=smith.id, messages=messages,
                                  source=source, sender=sender,
                                  thread_id=thread_id, external_key=external_key, deployment_id=deployment_id,
                                  schedule_id=schedule_id, scheduled_for=scheduled_for, metadata=metadata)
    run = await session.get(Run, run_id)
    assert run is not None
    return run


async def enqueue_run_id(
    session: AsyncSession, *, project_id: str, smith_id: str, messages: list[InputMessage], source: str,
    sender: dict[str, Any] | None, thread_id: str | None = None, external_key: str | None = None,
    deployment_id: str | None = None, schedule_id: str | None = None,
    scheduled_for: datetime | None = None, metadata: dict[str, Any] | None = None,
) -> str:
    """Insert a queued run with its input stored in the thread, in the caller's transaction; its id.

    Inbound text loses any line that imitates the platform line (ID-4); the real one, built from
    the channel-authenticated sender, goes before the message (ID-1). Every row is written by the
    store's prebuilt statements (models/store/), not through ORM objects: this is every inbound
    message's path.
    """
    thread = await _thread_id_for(session, project_id, smith_id, thread_id, deployment_id, external_key)
    nonce = new_nonce()
    run = queued_run_row(project_id=project_id, smith_id=smith_id, thread_id=thread, source=source,
                         input=[m.model_dump() for m in messages],
                         metadata={**(metadata or {}), "sender": sender, "_nonce": nonce},
                         deployment_id=deployment_id, schedule_id=schedule_id, scheduled_for=scheduled_for,
                         now=utcnow())
    await insert_run(session, run)
    rows, stripped_total = input_message_rows(run["id"], thread, messages, sender, nonce)
    await insert_messages(session, rows)
    data = {"run_id": run["id"], "status": "queued", "source": source, "stripped_lines": stripped_total}
    await append_run_event(session, run_id=run["id"], type="run.queued", data=data, first=True)
    await append_event(session, project_id=project_id, type="run.queued", data=data, run_id=run["id"],
                       smith_id=smith_id, deployment_id=deployment_id)
    await note_queued(session, run["id"])  # other processes' idle workers look at once (PostgreSQL)
    return str(run["id"])



async def create_run(session: AsyncSession, *, actor: Actor, smith_id: str, body: RunCreate) -> Run:
    smith = await get_smith(session, actor=actor, smith_id=smith_id)
    check_token_run(actor)  # after the scope check: a refused call does not use the token's quota
    return await enqueue_run(session, smith=smith, messages=body.input, source="api",
                             sender=api_sender(actor), thread_id=body.thread_id)


async def get_run(session: AsyncSession, *, actor: Actor, run_id: str) -> Run:
    run = await session.get(Run, run_id)
    if run is None or run.project_id != actor.project_id:
        raise NotFound(f"no run {run_id}", code="run_not_found")
    actor.require_smith(run.smith_id)
    return run


async def pending_approval(session: AsyncSession, run: Run) -> Approval | None:
    if run.status != "awaiting_approval":
        return None
    stmt = select(Approval).where(Approval.run_id == run.id, Approval.status.in_(("pending", "edit_requested")))
    return (await session.execute(stmt)).scalars().first()


async def list_runs(
    session: AsyncSession, *, actor: Actor, smith_id: str | None = None, status: str | None = None,
    source: str | None = None, limit: int | None = None, cursor: str | None = None,
) -> Page[Run]:
    stmt = select(Run).where(Run.project_id == actor.project_id)
    if not actor.is_admin:
        smith_id = actor.smith_id
    if smith_id:
        stmt = stmt.where(Run.smith_id == smith_id)
    if status:
        stmt = stmt.where(Run.status == status)
    if source:
        stmt = stmt.where(Run.source == source)
    return await paginate(session, stmt, Run.id, limit=limit, cursor=cursor)


async def list_run_events(session: AsyncSession, *, actor: Actor, run_id: str,
                          after_seq: int = 0) -> list[RunEvent]:
    run = await get_run(session, actor=actor, run_id=run_id)
    stmt = select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.seq > after_seq).order_by(RunEvent.seq)
    return list((await session.execute(stmt)).scalars())


async def list_run_messages(session: AsyncSession, *, actor: Actor, run_id: str) -> list[Message]:
    """The thread up to and including this run (what the conversation looked like)."""
    run = await get_run(session, actor=actor, run_id=run_id)
    return await thread_history(session, run)


async def cancel_run(session: AsyncSession, *, actor: Actor, run_id: str) -> Run:
    run = await get_run(session, actor=actor, run_id=run_id)
    if run.status in TERMINAL:
        raise Conflict(f"run {run.id} is already {run.status}", code="run_finished")
    if not await transition(session, run, "cancelled", data={"by": actor.subject}):
        raise Conflict(f"run {run.id} changed while cancelling; try again", code="run_changed")
    await session.execute(Approval.__table__.update().where(  # type: ignore[attr-defined]
        Approval.run_id == run.id, Approval.status == "pending").values(status="cancelled"))
    await session.refresh(run)  # the transition's UPDATE does not touch the loaded object
    return run


def may_decide(actor: Actor, run: Run) -> bool:
    """The owner decides: an admin or the console, or the smith's own token (APR-1)."""
    return actor.is_admin or actor.smith_id == run.smith_id


# What the approval prompt in the chat turns into once decided (its buttons go).
OUTCOME_TEXT = {"approved": "✅ Approved", "rejected": "❌ Rejected", "edited": "✏️ Edited",
                "edit_requested": "✏️ Send your correction"}


async def submit_decision(session: AsyncSession, *, actor: Actor | None, run_id: str, decision: Decision,
                          decided_by: str | None = None, project_id: str | None = None) -> Run:
    """Approve, reject or edit the paused tool call. Channels call this too (``actor=None`` with
    ``decided_by`` = the channel-verified owner identity, already checked by the caller)."""
    if actor is not None:
        run = await session.get(Run, run_id)
        if run is None or run.project_id != actor.project_id:
            raise NotFound(f"no run {run_id}", code="run_not_found")
        if not may_decide(actor, run):
            raise Forbidden("only the smith's owner or an admin may decide", code="not_owner")
        decided_by = f"{actor.kind}:{actor.subject}"
    else:
        run = await session.get(Run, run_id)
        if run is None or run.project_id != project_id:
            raise NotFound(f"no run {run_id}", code="run_not_found")
    approval = await pending_approval(session, run)
    if approval is None:
        raise Conflict(f"run {run.id} is not waiting for approval (it is {run.status})",
                       code="not_awaiting_approval")
    if decision.decision == "edit" and not (decision.message or "").strip():
        raise Invalid("an edit needs the corrected instruction in message", code="edit_needs_message",
                      field="message")
    status = {"approve": "approved", "reject": "rejected", "edit": "edited"}[decision.decision]
    approval.status = status
    approval.decided_by = decided_by
    approval.decided_at = utcnow()
    approval.message = decision.message
    if decision.decision != "approve":
        for call in pending_calls(await recent_turns(session, run)):  # the run's own messages suffice
            note = ("The owner rejected this call." if decision.decision == "reject"
                    else "The owner rejected this call and sent a correction.")
            session.add(Message(id=new_id("msg"), thread_id=run.thread_id or "", run_id=run.id, role="tool",
                                content=note, tool_call_id=call["id"], name=call["function"]["name"]))
        if decision.decision == "edit":
            text, _ = strip_forgeries(decision.message or "")
            session.add(Message(id=new_id("msg"), thread_id=run.thread_id or "", run_id=run.id,
                                role="user", content=text))
    data = {"approval_id": approval.id, "decision": decision.decision, "by": decided_by}
    await enqueue_prompt_outcome(session, run_id=run.id, approval_id=approval.id, outcome=OUTCOME_TEXT[status])
    await append_event(session, project_id=run.project_id, type="approval.decided", run_id=run.id,
                       smith_id=run.smith_id, data={"run_id": run.id, **data})
    if not await transition(session, run, "queued", data=data):
        raise Conflict(f"run {run.id} changed while deciding; try again", code="run_changed")
    await session.refresh(run)  # the transition's UPDATE does not touch the loaded object
    return run
