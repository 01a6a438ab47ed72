"""Where a deployment's runs meet its channel: the reply, the approval prompt and the send tools.

These are the agent loop's hooks (jobs.agent.AgentEnv); each enqueues outbox entries in the
step's own transaction, keyed by run and step, so a repeated step never sends twice.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.channel_hub import ChannelHub
from app.services.routing import SendTarget, delivery_conversation, send_targets
from channels import REGISTRY
from channels.base import Channel
from channels.errors import ChannelError
from channels.types import ApprovalPrompt, Outbound, ToolSpec
from jobs.delivery import enqueue_send
from jobs.tools import Tool, ToolContext, ToolError, chip_labels
from models import Approval
from models.store.outbox import sent_by_tool
from models.store.routing import deployment_kind
from models.store.runs import RunLike

# Runs no conversation started whose reply, chips and approval prompt go to the smith's conversation.
DELIVERED_SOURCES = frozenset({"schedule", "api"})
# An approval button's data: "<decision letter>:<the approval's callback token>" (Telegram allows 64 bytes).
APPROVE, REJECT, EDIT = "a", "r", "e"
DECISIONS = {APPROVE: "approve", REJECT: "reject", EDIT: "edit"}


def callback_data(action: str, approval: Approval) -> str:
    return f"{action}:{approval.callback_token}"


def read_button(data: str) -> tuple[str | None, str]:
    """The decision ("approve", "reject", "edit"; None when unknown) and the callback token in a button's
    data. The data is the tapper's: the token must still be looked up."""
    code, _, token = data.partition(":")
    return DECISIONS.get(code), token


class Conversations:
    def __init__(self, hub: ChannelHub) -> None:
        self.hub = hub

    async def _channel(self, session: AsyncSession, project_id: str, kind: str) -> Channel | None:
        return await self.hub.for_project(session, project_id, kind)

    async def _send(self, session: AsyncSession, run: RunLike, outbound: Outbound, key: str) -> None:
        address, deployment_id = run.run_metadata.get("address"), run.deployment_id
        if deployment_id and address:  # a conversation started the run: the reply goes back there, in its thread
            kind = await deployment_kind(session, deployment_id=deployment_id)
            thread, context = run.run_metadata.get("thread"), run.run_metadata.get("reply_context")
            if thread and outbound.thread is None:
                outbound = replace(outbound, thread=str(thread))
            if isinstance(context, dict) and outbound.reply_context is None:  # e.g. an email's threading
                outbound = replace(outbound, reply_context=context)
        elif run.source in DELIVERED_SOURCES:  # SCH-2: the smith's bound conversation, if it has one
            conversation = await delivery_conversation(session, run)
            if conversation is None:
                return  # no conversation: the reply stays on the run
            deployment_id, kind, address = conversation.deployment_id, conversation.kind, conversation.address
        else:
            return  # MCP: the caller gets the reply in its answer
        if kind is None:
            return
        channel = await self._channel(session, run.project_id, kind)
        if channel is None:
            return
        for index, payload in enumerate(channel.render(outbound)):
            await enqueue_send(session, project_id=run.project_id, kind=kind, address=str(address),
                               payload=payload, idempotency_key=f"{key}:{index}", run_id=run.id,
                               deployment_id=deployment_id)

    async def on_reply(self, session: AsyncSession, run: RunLike, text: str, chips: list[str]) -> None:
        if not text.strip():
            return
        started_by_conversation = run.deployment_id and run.run_metadata.get("address")
        if not started_by_conversation and await sent_by_tool(session, run_id=run.id):
            return  # SCH-2: the model already wrote to the person itself; its closing words stay on the run
        await self._send(session, run, Outbound(text=text, suggested_replies=chips), f"{run.id}:reply")

    async def on_approval(self, session: AsyncSession, run: RunLike, approval: Approval) -> None:
        arguments = json.dumps(approval.arguments, ensure_ascii=False)
        text = f"Approve {approval.tool_name}?\n{arguments[:800]}"
        prompt = ApprovalPrompt(text=text, approve_token=callback_data(APPROVE, approval),
                                reject_token=callback_data(REJECT, approval),
                                edit_token=callback_data(EDIT, approval))
        await self._send(session, run, Outbound(text="", approval=prompt), f"{run.id}:approval:{approval.id}")

    async def extra_tools(self, session: AsyncSession, run: RunLike) -> list[Tool]:
        """DEP-6: each active deployment of the smith adds its channel's send tool, and the other tools
        its channel offers there (SL-7), as far as the installation's grants allow."""
        tools: list[Tool] = []
        for target in await send_targets(session, run.smith_id):
            channel_class = REGISTRY.get(target.kind)
            name = channel_class.send_tool if channel_class else None
            if not name or not target.address:
                continue
            tools.append(self._send_tool(name, target, target.address))
            channel = await self._channel(session, target.project_id, target.kind)
            taken = {tool.name for tool in tools}
            for spec in channel.tools_for(target.address) if channel else []:
                if spec.name not in taken:  # the first conversation's tool when several could serve
                    tools.append(self._channel_tool(spec, channel, target.address))
        return tools

    def _channel_tool(self, spec: ToolSpec, channel: Channel, address: str) -> Tool:
        async def fetch(args: dict[str, Any]) -> str:  # read-only, run outside the step's transaction
            try:
                return await channel.call_tool(spec.name, address, args)
            except ChannelError as exc:
                raise ToolError(f"{exc} ({exc.code})") from exc

        return Tool(name=spec.name, description=spec.description, parameters=spec.parameters, fetch=fetch)

    def _send_tool(self, name: str, deployment: SendTarget, address: str) -> Tool:
        channel_class = REGISTRY[deployment.kind]

        async def handler(ctx: ToolContext, args: dict[str, Any]) -> str:
            channel = await self._channel(ctx.session, deployment.project_id, deployment.kind)
            if channel is None:
                raise ToolError(f"{deployment.kind} is not connected")
            if channel_class.send_tool_parameters is not None:  # a send tool of the channel's own shape
                try:
                    outbound = channel.outbound_from_tool(args)
                except ValueError as exc:
                    raise ToolError(str(exc)) from exc
            else:
                text = str(args.get("text", "")).strip()
                if not text:
                    raise ToolError("text is required")
                chips = chip_labels({"replies": args["suggested_replies"]}) if args.get("suggested_replies") else []
                outbound = Outbound(text=text, suggested_replies=chips)
            for index, payload in enumerate(channel.render(outbound)):
                await enqueue_send(ctx.session, project_id=deployment.project_id, kind=deployment.kind,
                                   address=address, payload=payload, idempotency_key=f"{ctx.step_key}:{index}",
                                   run_id=ctx.run.id, deployment_id=deployment.deployment_id)
            return f"Message queued for delivery on {deployment.kind}."

        if channel_class.send_tool_parameters is not None:
            return Tool(name=name, description=channel_class.send_tool_description,
                        parameters=channel_class.send_tool_parameters, handler=handler)
        return Tool(
            name=name,
            description=f"Send a message to the person on {deployment.kind} (they see it in their chat). "
                        "Optionally offer quick replies.",
            parameters={"type": "object", "properties": {
                "text": {"type": "string", "description": "The message."},
                "suggested_replies": {"type": "array", "items": {"type": "string", "maxLength": 19},
                                      "maxItems": 10, "description": "Optional quick replies (CHIP-6)."}},
                "required": ["text"]},
            handler=handler,
        )

