"""MCP server deployments (MCP-1..MCP-3, DEP-4): who a caller reaches, the ``ask`` tool, memory resources.

Transport, auth headers and Origin/Host checks live in ``app/api/mcp.py``; everything here works on a
session and an authenticated ``Actor`` so the console, tests and the HTTP glue share one set of rules.

- A smith target exposes that one shared smith; every caller gets its own thread on it.
- An agent target mints a persistent smith per caller, keyed on the token subject (``mcp:<subject>``,
  ``mcp-caller:<subject>`` for caller tokens), so distinct subjects are isolated and the same subject
  always comes back to the same smith. Caller tokens (``app.services.mcp_tokens``) are how callers
  get in without admin tokens.
- ``ask`` is a normal run (source ``mcp``): queued, claimed by any worker process, listed in
  ``GET /v1/runs``; the tool polls the run row until it finishes, pauses for approval, or times out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from app.services.actors import Actor
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.quotas import check_token_run
from app.services.routing import mint_smith
from app.services.runs import MAX_MESSAGE_CHARS, InputMessage, RunOutput, enqueue_run, pending_approval, public_error
from jobs import run_signals
from jobs.runstate import TERMINAL
from jobs.waiting import idle_wait
from models import Agent, Approval, Deployment, MemoryEntry, Run, Smith
from models.db import session_scope

log = logging.getLogger("ingram.mcp")

KIND = "mcp"
# Under the 60 s request timeout of the TypeScript MCP SDK (Claude Desktop via mcp-remote, Cursor, VS Code):
# a longer wait would be cut off there with no answer; this way the caller gets the run id instead.
ASK_TIMEOUT_S = 50.0
MEMORY_SCHEME = "memory://"
RESOURCE_PAGE = 100
# Statuses at which ``ask`` stops waiting: finished, or paused until the owner decides (APR-1).
_STOP = TERMINAL | {"awaiting_approval"}
# Characters kept as-is in a memory URI; ``:`` is escaped so ``memory://a:b`` is not read as host:port.
_URI_SAFE = "/._-"


def caller_identity(actor: Actor) -> str:
    """The provider identity of an MCP caller: its token subject (DEP-4 keys minted smiths on it).

    Caller tokens get their own namespace (``mcp-caller:``), so a caller named like an admin token's
    subject never reaches the smith minted for that admin token (nor its thread on a shared smith).
    """
    if actor.is_mcp_caller:
        return f"mcp-caller:{actor.subject}"
    return f"mcp:{actor.subject}"


def mcp_sender(actor: Actor, deployment: Deployment) -> dict[str, Any]:
    """The verified sender block of an MCP run. The bearer token is the authentication. An admin
    token, the smith's own token, or a caller on its own minted smith owns the smith (ID-3); a caller
    token on a smith target is one of the shared smith's many callers, not its owner."""
    owner = not (actor.is_mcp_caller and deployment.target_type == "smith")
    return {"is_owner": owner, "channel": "mcp", "identity": caller_identity(actor), "display": actor.subject,
            "verified": True}


def memory_uri(key: str) -> str:
    return MEMORY_SCHEME + quote(key, safe=_URI_SAFE)


def key_of_uri(uri: str) -> str | None:
    if not uri.startswith(MEMORY_SCHEME):
        return None
    key = unquote(uri[len(MEMORY_SCHEME):])
    return key or None


async def authorize(session: AsyncSession, *, actor: Actor, deployment_id: str) -> Deployment:
    """The MCP deployment this caller may use, or NotFound / Forbidden (MCP-1, MCP-3).

    Deleted, revoked, unknown, other-project and non-MCP deployments all answer the same NotFound,
    so an id's existence never leaks across projects.
    """
    deployment = await session.get(Deployment, deployment_id)
    if (deployment is None or deployment.project_id != actor.project_id or deployment.kind != KIND
            or deployment.deleted_at is not None or deployment.status != "active"):
        raise NotFound(f"no MCP deployment {deployment_id}", code="deployment_not_found")
    if actor.is_mcp_caller:
        actor.require_scope(deployment.id)  # a caller token: its own deployment, whatever the target
    elif not actor.is_admin and not (deployment.target_type == "smith" and deployment.target_id == actor.smith_id):
        # A smith token reaches only its own smith's endpoint; agent targets mint per subject and
        # are for project-level tokens (the spec: a smith token may only target its own smith).
        raise Forbidden("a smith token may only use its own smith's MCP endpoint", code="wrong_smith")
    return deployment


async def smith_for(session: AsyncSession, *, actor: Actor, deployment: Deployment, mint: bool) -> Smith | None:
    """The smith this caller talks to on this deployment; None only when ``mint`` is off and the
    caller has not asked anything yet (listing resources should not create smiths)."""
    if deployment.target_type == "smith":
        smith = await session.get(Smith, deployment.target_id)
        if smith is None:
            raise NotFound(f"no MCP deployment {deployment.id}", code="deployment_not_found")
        return smith
    identity = caller_identity(actor)
    if not mint:
        stmt = select(Smith).where(Smith.minted_by_deployment_id == deployment.id,
                                   Smith.provider_identity == identity)
        return (await session.execute(stmt)).scalar_one_or_none()
    if await session.get(Agent, deployment.target_id) is None:
        raise NotFound(f"no MCP deployment {deployment.id}", code="deployment_not_found")
    return await mint_smith(session, deployment=deployment, identity=identity, display=actor.subject)


def _check_message(message: object) -> str:
    if not isinstance(message, str) or not message.strip():
        raise Invalid("message must be a non-empty string", code="invalid_message", field="message")
    if len(message) > MAX_MESSAGE_CHARS:
        raise Invalid(f"message may hold at most {MAX_MESSAGE_CHARS} characters", code="message_too_long",
                      field="message")
    return message


async def enqueue_ask(session: AsyncSession, *, actor: Actor, deployment_id: str, message: object) -> Run:
    """Queue one ``ask`` as a run in the caller's own thread of the smith (history persists, MCP-2)."""
    text = _check_message(message)
    deployment = await authorize(session, actor=actor, deployment_id=deployment_id)
    check_token_run(actor)  # IC_RUNS_PER_TOKEN_PER_MINUTE (app/services/quotas.py), before any write
    smith = await smith_for(session, actor=actor, deployment=deployment, mint=True)
    assert smith is not None
    return await enqueue_run(
        session, smith=smith, messages=[InputMessage(role="user", content=text)], source="mcp",
        sender=mcp_sender(actor, deployment), external_key=caller_identity(actor), deployment_id=deployment.id,
    )


@dataclass
class AskResult:
    run_id: str
    smith_id: str
    thread_id: str | None
    status: str
    reply: str | None = None
    suggested_replies: list[str] = field(default_factory=list)
    pending_approval: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    timed_out: bool = False

    @property
    def is_error(self) -> bool:
        return self.status in {"failed", "cancelled"} or self.timed_out

    def text(self) -> str:
        """What the MCP client (usually a model) reads."""
        if self.status == "completed":
            return self.reply or ""
        if self.status == "awaiting_approval":
            tool = (self.pending_approval or {}).get("tool", "a tool")
            return (f"The smith is waiting for its owner to approve {tool} (run {self.run_id}). The owner "
                    f"approves or rejects it in the console (Runs → {self.run_id}) or with "
                    f"POST /v1/runs/{self.run_id}/submit; the reply then lands on that run.")
        if self.timed_out:
            return (f"No reply yet: run {self.run_id} is still {self.status}. "
                    f"Read it later with GET /v1/runs/{self.run_id}.")
        message = (self.error or {}).get("message") or self.status
        return f"The run {self.status} (run {self.run_id}): {message}"

    def structured(self) -> dict[str, Any]:
        return {"reply": self.reply, "suggested_replies": self.suggested_replies, "status": self.status,
                "run_id": self.run_id, "smith_id": self.smith_id, "thread_id": self.thread_id,
                "pending_approval": self.pending_approval}


def result_of(run: Run, *, approval: Approval | None = None, timed_out: bool = False) -> AskResult:
    result = AskResult(run_id=run.id, smith_id=run.smith_id, thread_id=run.thread_id, status=run.status,
                       error=public_error(run.error), timed_out=timed_out and run.status not in _STOP)
    if run.status == "completed":
        output = RunOutput(**run.output) if run.output else RunOutput()
        result.reply, result.suggested_replies = output.text or "", list(output.suggested_replies)
    if approval is not None:
        result.pending_approval = {"approval_id": approval.id, "tool": approval.tool_name,
                                   "arguments": approval.arguments}
    return result


class RunWatcher:
    """Waits for runs to stop, for every ask of this process with one query per wake-up.

    Any worker process may execute the run, so the run row is the truth. One watcher per process reads
    all awaited runs at once (``WHERE id IN (...)``) and hands each waiter its stopped row. It reads when
    one of them changed (``jobs.run_signals``: the transition's commit in this process, PostgreSQL's
    NOTIFY from another), and otherwise every ``SAFETY_S`` as a safety net, so an ask returns as soon as
    its run's last transaction committed instead of on a timer's next tick.
    """

    SAFETY_S = 0.5

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # Weak: the watcher is the value of a WeakKeyDictionary keyed by these sessions.
        self.sessions = weakref.ref(sessions)
        self.waiters: dict[str, list[tuple[float, asyncio.Future[Run | None]]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        heard = weakref.WeakMethod(self._heard)  # the signal must not keep a test's watcher alive

        def listener(run_ids: frozenset[str]) -> None:
            method = heard()
            if method is None:
                unsubscribe()
            else:
                method(run_ids)

        unsubscribe = run_signals.subscribe(listener)

    def _heard(self, run_ids: frozenset[str]) -> None:
        if not run_ids.isdisjoint(self.waiters):
            self.changed.set()

    async def wait(self, run_id: str, timeout_s: float) -> Run | None:
        """The run's row once it stopped; None after ``timeout_s``; NotFound if the run vanished
        (deleted with its smith while we waited)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Run | None] = loop.create_future()
        entry = (loop.time(), future)
        self.waiters.setdefault(run_id, []).append(entry)
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._watch(), name="mcp-run-watcher")
        else:
            self.changed.set()  # the run may have stopped before this waiter was registered
        try:
            run = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        finally:
            entries = self.waiters.get(run_id, [])
            if entry in entries:
                entries.remove(entry)
                if not entries:
                    del self.waiters[run_id]
        if run is None:
            raise NotFound(f"run {run_id} no longer exists", code="run_not_found")
        return run

    async def _watch(self) -> None:
        while self.waiters:
            self.changed.clear()  # a change from here on means a new read
            ids = list(self.waiters)
            sessions = self.sessions()
            try:
                if sessions is None:
                    raise RuntimeError("the database these runs live in is gone")
                async with sessions() as session:
                    runs = {r.id: r for r in (await session.execute(select(Run).where(Run.id.in_(ids)))).scalars()}
            except Exception:  # a failed read must not strand the waiters: they try again next time
                log.exception("reading awaited runs failed")
                runs = None
            if runs is not None:
                for run_id in ids:
                    run = runs.get(run_id)
                    if run is None or run.status in _STOP:
                        for _, future in self.waiters.pop(run_id, []):
                            if not future.done():
                                future.set_result(run)
            if self.waiters:
                await idle_wait(self.changed, self.SAFETY_S)


_watchers: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], RunWatcher] = weakref.WeakKeyDictionary()


def watcher_for(sessions: async_sessionmaker[AsyncSession]) -> RunWatcher:
    """The process's watcher for this database (tests build a runtime, so sessions, per test)."""
    found = _watchers.get(sessions)
    if found is None:
        found = _watchers[sessions] = RunWatcher(sessions)
    return found


async def wait_for_run(sessions: async_sessionmaker[AsyncSession], run_id: str, *,
                       timeout_s: float = ASK_TIMEOUT_S) -> AskResult:
    """Wait until the run stops (finished or paused for approval) or the timeout passes. A finished
    run needs no further read; a pause reads its approval, a timeout the run's current state."""
    run = await watcher_for(sessions).wait(run_id, timeout_s)
    if run is not None and run.status != "awaiting_approval":
        return result_of(run)
    async with sessions() as session:
        current = await session.get(Run, run_id)
        if current is None:
            raise NotFound(f"run {run_id} no longer exists", code="run_not_found")
        return result_of(current, approval=await pending_approval(session, current), timed_out=run is None)


async def ask(sessions: async_sessionmaker[AsyncSession], *, actor: Actor, deployment_id: str, message: object,
              timeout_s: float = ASK_TIMEOUT_S) -> AskResult:
    """MCP-2: send a message to the caller's smith and wait for the reply (or the approval pause)."""
    for attempt in range(2):
        try:
            async with session_scope(sessions) as session:
                run = await enqueue_ask(session, actor=actor, deployment_id=deployment_id, message=message)
                run_id = run.id
            break
        except IntegrityError:
            # Two first asks of one caller raced to create its thread (unique per smith and key):
            # the loser's transaction is gone, so it retries once and finds the winner's thread.
            if attempt:
                raise
    return await wait_for_run(sessions, run_id, timeout_s=timeout_s)


async def list_memory_resources(session: AsyncSession, *, actor: Actor, deployment_id: str,
                                cursor: str | None = None) -> tuple[list[MemoryEntry], str | None]:
    """MCP-2: the caller's smith's memory entries, by key, a page at a time (cursor = last key)."""
    deployment = await authorize(session, actor=actor, deployment_id=deployment_id)
    smith = await smith_for(session, actor=actor, deployment=deployment, mint=False)
    if smith is None:
        return [], None
    stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id)
    if cursor:
        stmt = stmt.where(MemoryEntry.key > cursor)
    entries = list((await session.execute(stmt.order_by(MemoryEntry.key).limit(RESOURCE_PAGE + 1))).scalars())
    if len(entries) > RESOURCE_PAGE:
        return entries[:RESOURCE_PAGE], entries[RESOURCE_PAGE - 1].key
    return entries, None


async def read_memory_resource(session: AsyncSession, *, actor: Actor, deployment_id: str,
                               uri: str) -> MemoryEntry:
    deployment = await authorize(session, actor=actor, deployment_id=deployment_id)
    key = key_of_uri(uri)
    smith = await smith_for(session, actor=actor, deployment=deployment, mint=False)
    entry = None
    if key is not None and smith is not None:
        stmt = select(MemoryEntry).where(MemoryEntry.smith_id == smith.id, MemoryEntry.key == key)
        entry = (await session.execute(stmt)).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"no resource {uri}", code="resource_not_found")
    return entry


# -- client configuration shown in the console ---------------------------------------------------

TOKEN_PLACEHOLDER = "<YOUR_TOKEN>"


def server_key(name: str) -> str:
    """A config key for the server entry: ``ingram-<name>`` in lowercase letters, digits and dashes."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())[:40].strip("-")
    return f"ingram-{slug}" if slug else "ingram"


def client_config(url: str, name: str) -> str:
    """mcpServers JSON for clients that speak Streamable HTTP themselves (Claude Code, Cursor, VS Code...)."""
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}"}}
    return json.dumps({"mcpServers": {server_key(name): entry}}, indent=2)


def desktop_config(url: str, name: str) -> str:
    """claude_desktop_config.json: Claude Desktop's file only runs stdio servers, so the mcp-remote bridge
    connects; the header travels through env because a space inside args does not survive on every OS."""
    entry = {"command": "npx", "args": ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"],
             "env": {"AUTH_HEADER": f"Bearer {TOKEN_PLACEHOLDER}"}}
    return json.dumps({"mcpServers": {server_key(name): entry}}, indent=2)
