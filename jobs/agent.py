"""The agent loop: model + tools + approvals, one persisted step at a time.

Re-entrant: everything the loop knows is in the thread's messages, so a worker that claims a run
after a crash picks up exactly where the last committed step ended. Each step is its own short
transaction, conditional on still holding the run's lease; the model call happens outside any
transaction. A step whose effects were committed is never repeated: tool side effects carry the
idempotency key ``<run id>:<tool call id>``, and a final reply already stored is not asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.crypto import SecretBox
from jobs.events import append_event, append_run_event
from jobs.identity import platform_instructions
from jobs.llm import ModelConfig, ModelError, ModelReply, build_provider
from jobs.memory import MemoryLimits
from jobs.model_access import checked_call, model_config_for, own_base_url
from jobs.queue import claim_run, hold_run
from jobs.runstate import transition
from jobs.thread_messages import pending_calls, recent_turns, suggested_replies_of, to_model_message, trim_history
from jobs.tools import BUILTIN_TOOLS, Tool, ToolContext, ToolError
from models import Approval
from models.store.agents import AgentSettings, agent_of_smith
from models.store.messages import Turn, insert_messages, message_row, turn_of
from models.store.runs import RunState, change_status, renew_lease
from models.types import new_id

log = logging.getLogger("ingram.agent")

MAX_MODEL_CALLS = 12

ExtraTools = Callable[[AsyncSession, RunState], Awaitable[list[Tool]]]


class FetchedResult(NamedTuple):
    """What a fetching tool answered, stored as the call's result by the next transaction."""

    call: dict[str, Any]
    text: str


Fetched = ModelReply | FetchedResult
Request = Callable[[], Awaitable[Fetched]]


def _fetcher(tool: Tool, call: dict[str, Any], arguments: dict[str, Any], run_id: str) -> Request:
    async def fetch() -> Fetched:
        assert tool.fetch is not None
        try:
            text = await tool.fetch(arguments)
        except ToolError as exc:
            text = f"error: {exc}"
        except Exception as exc:  # a broken tool must not leave the run stuck
            log.exception("tool %s failed in run %s", tool.name, run_id)
            text = f"error: the tool {tool.name} failed ({type(exc).__name__})"
        return FetchedResult(call, text)

    return fetch
OnReply = Callable[[AsyncSession, RunState, str, list[str]], Awaitable[None]]
OnApproval = Callable[[AsyncSession, RunState, Approval], Awaitable[None]]


@dataclass
class AgentEnv:
    """What the loop needs from its process: sessions, HTTP, model defaults and channel hooks."""

    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    default_model: ModelConfig
    worker_id: str
    lease_seconds: float = 60.0
    extra_tools: ExtraTools | None = None  # send tools of bound deployments (DEP-6)
    on_reply: OnReply | None = None  # deliver the final reply to the run's conversation
    on_approval: OnApproval | None = None  # render an approval prompt on the run's channel
    step_hook: Callable[[str], None] | None = field(default=None, repr=False)  # crash tests
    secrets: SecretBox | None = None  # opens an agent's own model key (jobs/model_access.py)
    allow_private_urls: bool = False  # IC_ALLOW_PRIVATE_URLS, for an agent's own base_url (jobs/egress.py)
    memory_limits: MemoryLimits = field(default_factory=MemoryLimits)  # IC_MEMORY_* (jobs/memory.py)


class LeaseLost(Exception):
    """The run was cancelled or taken over; stop without touching it."""


@dataclass
class _State:
    """What one transaction of the loop works on; ``messages`` stays current as steps add to it, and
    ``run`` is replaced as its status or usage changes."""

    run: RunState
    agent: AgentSettings
    messages: list[Turn]
    tools: dict[str, Tool] | None = None
    usage_unsaved: bool = False  # a reply changed run.usage; it is written with the next status

    async def add(self, session: AsyncSession, *, role: str, content: str = "",
                  tool_calls: list[dict[str, Any]] | None = None, tool_call_id: str | None = None,
                  name: str | None = None) -> None:
        """Store a message of this run (one prebuilt insert) and append it to ``messages``."""
        row = message_row(thread_id=self.run.thread_id or "", run_id=self.run.id, role=role, content=content,
                          name=name, tool_calls=tool_calls, tool_call_id=tool_call_id)
        await insert_messages(session, [row])
        self.messages.append(turn_of(row))


class AgentLoop:
    def __init__(self, env: AgentEnv, run_id: str = "") -> None:
        self.env = env
        self.run_id = run_id

    def _hook(self, point: str) -> None:
        if self.env.step_hook:
            self.env.step_hook(point)

    async def _load(self, session: AsyncSession, *, claimed: RunState | None = None) -> _State:
        run = claimed  # just claimed in this transaction: the lease is fresh
        if run is None:
            run = await hold_run(session, run_id=self.run_id, worker_id=self.env.worker_id,
                                 lease_seconds=self.env.lease_seconds)
            if run is None:
                raise LeaseLost
        agent = await agent_of_smith(session, smith_id=run.smith_id)
        if agent is None:
            raise ToolError("the run's smith or agent no longer exists")
        return _State(run, agent, await recent_turns(session, run))

    async def _tools(self, session: AsyncSession, state: _State) -> dict[str, Tool]:
        if state.tools is None:
            state.tools = dict(BUILTIN_TOOLS)
            if self.env.extra_tools:
                state.tools.update({t.name: t for t in await self.env.extra_tools(session, state.run)})
        return state.tools

    async def execute(self) -> None:
        """Drive the run (already claimed by this worker) until it leaves the running state."""
        await self._guarded(self._drive(claim=False))

    async def claim_and_execute(self) -> bool:
        """Claim the next runnable run and drive it, the claim and the first steps in one
        transaction. False when nothing was runnable."""
        await self._guarded(self._drive(claim=True))
        return bool(self.run_id)

    async def _guarded(self, drive: Awaitable[None]) -> None:
        try:
            await drive
        except LeaseLost:
            log.info("run %s: lease lost (cancelled or taken over); stopping", self.run_id)
        except ModelError as exc:
            if exc.detail:  # the upstream's words: the log and the admin's view only (RunView)
                log.warning("run %s: model error %s: %s (%s)", self.run_id, exc.code, exc, exc.detail[:1000])
            await self._fail(exc.code, str(exc), exc.detail)
        except ToolError as exc:
            await self._fail("run_invalid", str(exc))

    async def _drive(self, *, claim: bool) -> None:
        """Each transaction advances the run as far as it can without waiting on the network: tool
        calls, a local model, the final reply. It commits before a remote model call and the next
        transaction stores that reply. A crash anywhere loses only uncommitted work: the next worker
        resumes from the messages committed so far."""
        reply: Fetched | None = None
        for _ in range(MAX_MODEL_CALLS * 4):
            failure: Exception | None = None
            async with self.env.sessions() as session, session.begin():
                if claim:
                    claim = False
                    claimed = await claim_run(session, worker_id=self.env.worker_id,
                                              lease_seconds=self.env.lease_seconds)
                    if claimed is None:
                        return
                    self.run_id = claimed.id
                    # The claim commits even if the steps fail: the run is then failed, or retried once
                    # its lease expires, as after any other step, and never re-claimed in a tight loop.
                    try:
                        async with session.begin_nested():
                            request = await self._segment(session, claimed, reply)
                    except Exception as exc:
                        failure, request = exc, None
                else:
                    request = await self._segment(session, None, reply)
            if failure is not None:
                raise failure
            if request is None:
                return
            self._hook("before_model")
            async with self._keep_lease():
                reply = await request()
            self._hook("after_model")
        await self._fail("too_many_steps", f"the agent did not finish within {MAX_MODEL_CALLS} model calls")

    async def _segment(self, session: AsyncSession, claimed: RunState | None,
                       reply: Fetched | None) -> Request | None:
        state = await self._load(session, claimed=claimed)
        if isinstance(reply, FetchedResult):
            if any(c["id"] == reply.call["id"] for c in pending_calls(state.messages)):  # not answered meanwhile
                await self._tool_result(session, state, reply.call, reply.text)
        elif reply is not None:
            await self._store_reply(session, state, reply)
            self._hook("after_store_reply")
        request = await self._advance(session, state)
        if request is not None and state.usage_unsaved:  # the run goes on in a later transaction
            await change_status(session, run_id=state.run.id, expected="running",
                                changes={"usage": state.run.usage}, lease_owner=self.env.worker_id)
        return request

    async def _advance(self, session: AsyncSession, state: _State) -> Request | None:
        """Run the steps that need no network inside this transaction. Returns None when the run left
        the running state, or the network call to make once the transaction committed: the remote
        model, or a tool that fetches (jobs.tools.Tool.fetch)."""
        agent, messages = state.agent, state.messages
        while True:
            calls = pending_calls(messages)
            if calls:
                fetch = await self._handle_call(session, state, calls[0])
                if fetch is not None:
                    return fetch
                if state.run.status != "running":  # paused for an approval
                    return None
                continue
            run = state.run
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.run_id == run.id and not last.tool_calls:
                await self._finish(session, state, last.content, suggested_replies_of(messages, run.id))
                return None
            if sum(1 for m in messages if m.run_id == run.id and m.role == "assistant") >= MAX_MODEL_CALLS:
                raise ModelError(f"the agent did not finish within {MAX_MODEL_CALLS} model calls",
                                 "too_many_steps")
            context = self._context(run, agent, messages)
            specs = [t.spec() for t in (await self._tools(session, state)).values()]
            config = model_config_for(agent, self.env.default_model, self.env.secrets)
            provider = build_provider(config, self.env.http)
            if not provider.in_process:
                return checked_call(config, self.env.http, own_base_url(agent, self.env.default_model),
                                    self.env.allow_private_urls, context, specs)
            await self._store_reply(session, state, await provider.complete(context, specs))

    def _context(self, run: RunState, agent: AgentSettings, messages: list[Turn]) -> list[dict[str, Any]]:
        nonce = str(run.run_metadata.get("_nonce", ""))
        system = "\n\n".join(p for p in (agent.instructions.strip(), platform_instructions(nonce)) if p)
        return [{"role": "system", "content": system}] + [to_model_message(m) for m in trim_history(messages)]

    @contextlib.asynccontextmanager
    async def _keep_lease(self) -> AsyncIterator[None]:
        """Renew the lease while a slow model call runs, so no other worker takes the run over."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.env.lease_seconds / 3)
                async with self.env.sessions() as session, session.begin():
                    await renew_lease(session, run_id=self.run_id, worker_id=self.env.worker_id,
                                      lease_seconds=self.env.lease_seconds)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _store_reply(self, session: AsyncSession, state: _State, reply: ModelReply) -> None:
        run = state.run
        calls = [{"id": c.id or f"call_{i}", "type": "function",
                  "function": {"name": c.name, "arguments": c.raw_arguments if c.arguments is None
                               else json.dumps(c.arguments)}}
                 for i, c in enumerate(reply.tool_calls)]
        await state.add(session, role="assistant", content=reply.text, tool_calls=calls)
        usage = dict(run.usage or {})
        for key, value in reply.usage.items():
            usage[key] = int(usage.get(key, 0)) + int(value)
        usage["model_calls"] = int(usage.get("model_calls", 0)) + 1
        await append_run_event(session, run_id=run.id, type="model.replied",
                               data={"text": reply.text[:500], "tool_calls": [c["function"]["name"] for c in calls]})
        state.run, state.usage_unsaved = run.with_changes({"usage": usage}), True

    async def _handle_call(self, session: AsyncSession, state: _State, call: dict[str, Any]) -> Request | None:
        """Run one pending tool call here, or return the fetch to run once the transaction committed."""
        run, agent, name = state.run, state.agent, call["function"]["name"]
        tools = await self._tools(session, state)
        tool = tools.get(name)
        try:
            arguments = json.loads(call["function"]["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            await self._tool_result(session, state, call, f"error: the arguments of {name} are not a JSON object")
            return None
        if tool is None:
            await self._tool_result(session, state, call, f"error: the tool {name!r} is not available to this smith")
            return None
        if name in (agent.approval_required_tools or []):
            approval = (await session.execute(
                select(Approval).where(Approval.run_id == run.id, Approval.tool_call_id == call["id"])
            )).scalar_one_or_none()
            if approval is None:
                await self._pause(session, state, call, name, arguments)
                return None
            if approval.status != "approved":  # reject/edit already wrote the result; be safe
                await self._tool_result(session, state, call, "The owner rejected this call.")
                return None
        if tool.fetch is not None:
            return _fetcher(tool, call, arguments, run.id)
        assert tool.handler is not None
        ctx = ToolContext(session=session, run=run, step_key=f"{run.id}:{call['id']}",
                          memory_limits=self.env.memory_limits)
        try:
            async with session.begin_nested():
                result = await tool.handler(ctx, arguments)
        except ToolError as exc:
            result = f"error: {exc}"
        except Exception as exc:  # a broken tool must not leave the run stuck
            log.exception("tool %s failed in run %s", name, run.id)
            result = f"error: the tool {name} failed ({type(exc).__name__})"
        await self._tool_result(session, state, call, result)
        self._hook("after_tool")
        return None

    async def _tool_result(self, session: AsyncSession, state: _State, call: dict[str, Any], content: str) -> None:
        run = state.run
        await state.add(session, role="tool", content=content, tool_call_id=call["id"], name=call["function"]["name"])
        await append_run_event(session, run_id=run.id, type="tool.result",
                               data={"tool": call["function"]["name"], "tool_call_id": call["id"],
                                     "ok": not content.startswith("error:"), "result": content[:500]})

    async def _pause(self, session: AsyncSession, state: _State, call: dict[str, Any], name: str,
                     arguments: dict[str, Any]) -> None:
        run = state.run
        approval = Approval(id=new_id("apr"), run_id=run.id, tool_call_id=call["id"], tool_name=name,
                            arguments=arguments, callback_token=secrets.token_urlsafe(12))
        session.add(approval)
        await session.flush()
        deciders = {"owner_identity": (run.run_metadata.get("owner_identity")), "admin": True,
                    "smith_token": run.smith_id}
        moved = await transition(session, run, "awaiting_approval", lease_owner=self.env.worker_id,
                                 values={"usage": run.usage}, data={"approval_id": approval.id, "tool": name})
        if moved is None:
            raise LeaseLost
        state.run = run = moved
        await append_event(session, project_id=run.project_id, type="approval.required", run_id=run.id,
                           smith_id=run.smith_id, deployment_id=run.deployment_id,
                           data={"run_id": run.id, "approval_id": approval.id, "tool": name,
                                 "arguments": arguments, "who_may_decide": deciders})
        if self.env.on_approval:
            await self.env.on_approval(session, run, approval)

    async def _finish(self, session: AsyncSession, state: _State, text: str, chips: list[str]) -> None:
        run, output = state.run, {"text": text, "suggested_replies": chips}
        if self.env.on_reply:
            await self.env.on_reply(session, run, text, chips)
        finished = await transition(session, run, "completed", lease_owner=self.env.worker_id,
                                    values={"output": output, "usage": run.usage})
        if finished is None:
            raise LeaseLost
        state.run = finished
        await append_event(session, project_id=run.project_id, type="message.completed", run_id=run.id,
                           smith_id=run.smith_id, deployment_id=run.deployment_id,
                           data={"run_id": run.id, "text": text, "suggested_replies": chips,
                                 "thread_id": run.thread_id})

    async def _fail(self, code: str, message: str, detail: str = "") -> None:
        error: dict[str, str] = {"code": code, "message": message}
        if detail:  # stored for the admin's view; the events (read by smith tokens) carry only ours
            error["detail"] = detail
        async with self.env.sessions() as session, session.begin():
            run = await hold_run(session, run_id=self.run_id, worker_id=self.env.worker_id,
                                 lease_seconds=self.env.lease_seconds)
            if run is None:  # cancelled or taken over meanwhile: not ours to fail
                return
            await transition(session, run, "failed", lease_owner=self.env.worker_id,
                             values={"error": error},
                             data={"error": {"code": code, "message": message}})
