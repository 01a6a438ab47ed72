"""Inbound provider traffic (DESIGN §5): verify, persist, acknowledge, then work.

One path for webhooks and long polling: every update becomes an ``inbound_delivery`` row (unique per
provider id, so replays do nothing) and, in the same transaction, a queued run, a binding, or an
approval decision. The provider gets its 200 as soon as that transaction commits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import installations, quotas, routing
from app.services.channel_hub import get_hub
from app.services.conversations import read_button
from app.services.errors import DomainError, Forbidden, Unauthorized
from app.services.routing import conversation_owner
from app.services.runs import OUTCOME_TEXT, Decision, InputMessage, enqueue_run_id, submit_decision
from app.services.runtime import Runtime, get_runtime
from app.services.text_decisions import decide_by_text
from channels.base import Channel
from channels.errors import MalformedPayload
from channels.types import (
    DELIVERY_STATUS,
    Inbound,
    InboundAction,
    InboundMessage,
    Outbound,
    ProviderEvent,
    RawRequest,
    TapAnswer,
)
from jobs.delivery import enqueue_prompt_outcome, enqueue_send
from jobs.receipts import apply_delivery_status
from jobs.reply_window import note_inbound
from jobs.waiting import inbound_request
from models import Approval, Integration, Run, Smith
from models.store.inbound import edit_requested_run, insert_delivery_once
from models.store.routing import integration_of_tenant
from models.types import utcnow

log = logging.getLogger("ingram.inbound")

CONNECTED = "You're connected to {name}. Say hello!"
RECONNECTED = "You're now connected to {name} instead of {old}. Say hello!"
BAD_LINK = "This link is invalid, already used or expired. Ask for a new link and tap it again."
SLOW_DOWN = "You're sending messages faster than I can answer. Please wait a minute, then try again."
TOUCH_EVERY = timedelta(seconds=5)
RECHECK_AFTER_S = 1.0  # a refused request's second look at the integration: at most once a second
TOASTS = {"approve": OUTCOME_TEXT["approved"], "reject": OUTCOME_TEXT["rejected"],
          "edit": "Send your correction as a message."}
INVALID_BUTTON = TapAnswer("This button is no longer valid.", refused=True)
NOT_THE_OWNER = TapAnswer("Only the owner can decide.", refused=True)
ALREADY_DECIDED = TapAnswer("Already decided.", refused=True)


@dataclass
class Answer:
    status: int = 200
    body: str = '{"ok":true}'
    content_type: str = "application/json"


@dataclass
class _AfterCommit:
    """The provider call that must wait until the transaction committed: acknowledging the tap."""

    action: InboundAction | None = None
    answer: TapAnswer = field(default_factory=TapAnswer)


class Source(NamedTuple):
    """The integration an item came through: what routing needs of it."""

    id: str
    project_id: str
    kind: str

    @classmethod
    def of(cls, integration: Integration) -> Source:
        return cls(integration.id, integration.project_id, integration.kind)


# Unknown tenant, unknown integration and a bad signature answer alike: nothing to enumerate.
REFUSED = "the request could not be verified"


PARSE_ON_THREAD_BYTES = 64 * 1024


def _refused() -> Unauthorized:
    return Unauthorized(REFUSED, code="invalid_signature")


async def receive_webhook(runtime: Runtime, *, kind: str, tenant: str, raw: RawRequest) -> Answer:
    """Verify first, from the channel hub's cache and outside any transaction (a forged request
    takes no write lock and does not make the background loops wait), then one transaction per
    request: look up, parse, store every item. A request that fails stores nothing, so the 5xx
    makes the provider retry all of it (DESIGN §5)."""
    hub = get_hub(runtime)
    found = await hub.for_tenant(kind, tenant)
    verdict = found.channel.verify(raw) if found is not None else None  # before any parsing
    if verdict is None or verdict.kind == "reject":
        # The secret may have changed in another process since this one cached the channel (a PUT
        # with a new secret): look again, reading at most once a second per tenant however many
        # forged requests come.
        fresher = await hub.for_tenant(kind, tenant, max_age_s=RECHECK_AFTER_S)
        if fresher is not found:
            found = fresher
            verdict = found.channel.verify(raw) if found is not None else None
    if verdict is None or verdict.kind == "reject":
        log.debug("refused %s webhook for %r: %s", kind, tenant,
                  verdict.reason if verdict is not None else "no such tenant or integration")
        if raw.method == "GET":  # a failed subscription handshake (Meta's hub.verify_token): 403, as Meta expects
            raise Forbidden(REFUSED, code="verification_failed")
        raise _refused()  # counted and throttled per client by app.api.limits
    if verdict.kind == "challenge":
        return Answer(body=verdict.body or "", content_type=verdict.content_type)
    with inbound_request():  # background loops let verified provider requests go first (jobs.waiting)
        return await _receive(runtime, kind, tenant, raw, found.channel)


async def _parse(channel: Channel, kind: str, raw: RawRequest) -> list[Inbound]:
    """A large body (an email with its attachments) is parsed on a thread: the event loop keeps serving."""
    try:
        if len(raw.body) > PARSE_ON_THREAD_BYTES:
            return await asyncio.to_thread(channel.parse, raw)
        return channel.parse(raw)
    except MalformedPayload as exc:
        raise DomainError(f"malformed {kind} payload: {exc}", code="malformed_payload") from exc


async def _receive(runtime: Runtime, kind: str, tenant: str, raw: RawRequest, verified_by: Channel) -> Answer:
    # Parsed before the transaction begins: on SQLite an open transaction holds the one writer.
    items = await _parse(verified_by, kind, raw)
    async with runtime.transaction() as session:
        # The request was verified before, from the channel hub's cache: this is the first statement.
        row = await integration_of_tenant(session, tenant=tenant, kind=kind)
        channel = None if row is None else await get_hub(runtime).for_stamp(session, row.id, row.updated_at)
        if row is None or channel is None:  # deleted since it was cached
            raise _refused()
        if channel is not verified_by:  # changed since it was cached: its own verdict and reading count
            if channel.verify(raw).kind != "accept":
                raise _refused()
            items = await _parse(channel, kind, raw)
        integration = Source(row.id, row.project_id, row.kind)
        afters = [after for item in items if (after := await _store(session, integration, channel, item))]
    channel.learn(items)
    await _after_commit(channel, afters)
    body, content_type = channel.ack_body
    return Answer(body=body, content_type=content_type)


async def handle(runtime: Runtime, *, source: Source, channel: Channel, items: list[Inbound]) -> int:
    """Store and route each pulled item in its own transaction; returns how many were new."""
    afters: list[_AfterCommit] = []
    for item in items:
        async with runtime.transaction() as session:
            after = await _store(session, source, channel, item)
        if after:
            afters.append(after)
    channel.learn(items)
    await _after_commit(channel, afters)
    return len(afters)


async def _store(session: AsyncSession, integration: Source, channel: Channel,
                 item: Inbound) -> _AfterCommit | None:
    """Record one item and route it; None for a redelivery (already handled)."""
    if isinstance(item, InboundMessage) and not quotas.allow_sender_run(
            integration.project_id, integration.kind, item.sender_id):
        return await _over_sender_limit(session, integration, channel, item)
    if not await _record(session, integration, item):
        return None
    if channel.reply_window is not None and not isinstance(item, ProviderEvent):  # WA-4: the window opens
        await note_inbound(session, project_id=integration.project_id, kind=integration.kind, address=item.address)
    after = _AfterCommit()
    if isinstance(item, InboundAction):
        after = await _on_action(session, integration, item)
    elif isinstance(item, ProviderEvent):
        await _on_provider_event(session, integration, item)
    else:
        await _on_message(session, integration, channel, item)
    await _touch(session, integration.id)
    return after


async def _over_sender_limit(session: AsyncSession, integration: Source, channel: Channel,
                             message: InboundMessage) -> _AfterCommit | None:
    """IC_RUNS_PER_SENDER_PER_MINUTE: a message over the limit stores nothing and starts nothing (no
    LLM spend, and no backlog that would answer minutes later). The sender hears it once per window,
    so a flood costs one outbox entry a minute, never a reply per message."""
    log.info("%s sender %s is over the run limit; message dropped", integration.kind, message.sender_id)
    if not quotas.first_refusal(integration.project_id, integration.kind, message.sender_id):
        return None
    if channel.reply_window is not None:  # the person did write: the answer below may go
        await note_inbound(session, project_id=integration.project_id, kind=integration.kind, address=message.address)
    await _reply(session, channel, integration, message.address, SLOW_DOWN, f"slow:{message.dedupe_key}")
    return _AfterCommit()  # new (counted); the reply wakes the deliverers at commit (jobs.commit_hooks)


async def _after_commit(channel: Channel, afters: list[_AfterCommit]) -> None:
    """Runs queued and replies put in the outbox woke their workers at commit (jobs.commit_hooks)."""
    for after in afters:
        if after.action is not None:
            await channel.acknowledge_action(after.action, after.answer)


_touched: dict[str, datetime] = {}  # integration id -> when this process last recorded a delivery


async def _touch(session: AsyncSession, integration_id: str) -> None:
    """Record the last delivery for the console, at most every few seconds: every inbound
    transaction writing the same row would serialize them all on its lock. This process skips the
    statement altogether when it wrote it recently; the WHERE clause covers other processes."""
    now = utcnow()
    if now - _touched.get(integration_id, datetime.min.replace(tzinfo=UTC)) < TOUCH_EVERY:
        return
    _touched[integration_id] = now
    await session.execute(update(Integration).where(
        Integration.id == integration_id,
        or_(Integration.last_delivery_at.is_(None), Integration.last_delivery_at < now - TOUCH_EVERY),  # type: ignore[union-attr]
    ).values(last_delivery_at=now))


async def _record(session: AsyncSession, integration: Source, item: Inbound) -> bool:
    """Insert the delivery once; False for a redelivery (one statement: ON CONFLICT DO NOTHING)."""
    return await insert_delivery_once(
        session, project_id=integration.project_id, integration_id=integration.id, kind=integration.kind,
        dedupe_key=item.dedupe_key, payload={"type": type(item).__name__, "address": getattr(item, "address", None),
                                             "sender": getattr(item, "sender_id", None)})


async def _reply(session: AsyncSession, channel: Channel, integration: Source, address: str, text: str,
                 key: str) -> None:
    for index, payload in enumerate(channel.render(Outbound(text=text))):
        await enqueue_send(session, project_id=integration.project_id, kind=integration.kind, address=address,
                           payload=payload, idempotency_key=f"{key}:{index}")


async def _on_message(session: AsyncSession, integration: Source, channel: Channel,
                      message: InboundMessage) -> None:
    project_id, kind = integration.project_id, integration.kind
    if message.start_payload:
        bound = await routing.bind_start_token(session, project_id=project_id, kind=kind,
                                                   token=message.start_payload, sender_id=message.sender_id,
                                                   address=message.address)
        if bound is not None:
            await _reply(session, channel, integration, message.address, await _connected_text(session, bound),
                         f"bind:{message.dedupe_key}")
            return
        if await routing.find_catch_all(session, project_id=project_id, kind=kind) is None:
            await _reply(session, channel, integration, message.address, BAD_LINK, f"badlink:{message.dedupe_key}")
            return
    if not message.addressed and not await routing.hears_everything(
            session, project_id=project_id, kind=kind, address=message.address):
        return  # SL-5: in a channel only a mention wakes the smith, unless it listens to all messages
    route = await routing.resolve(session, project_id=project_id, kind=kind, address=message.address,
                                      sender_id=message.sender_id, sender_display=message.sender_display,
                                      mint=message.verified)  # an unvouched-for sender mints no smith
    if route is None:
        log.info("%s message from %s matches no deployment; ignored", kind, message.sender_id)
        return
    if message.unreadable:  # a sticker, a voice note...: say what can be read rather than stay silent
        await _reply(session, channel, integration, message.address, channel.unreadable_reply(message.unreadable),
                     f"unreadable:{message.dedupe_key}")
        return
    is_owner = route.is_owner and message.verified  # ID-3: an email's From counts only with DMARC's pass
    if is_owner and await _correction(session, route.smith_id, message):
        return
    if is_owner and not channel.capabilities.native_approvals and await decide_by_text(
            session, smith_id=route.smith_id, message=message):
        return  # APR-3: "yes" / "no" answered the approval prompt
    sender = {"is_owner": is_owner, "channel": kind, "identity": message.sender_id,
              "display": message.sender_display, "verified": message.verified}
    text = InputMessage(role="user", content=message.text[:32_000] or " ")
    conversation = routing.ChannelThread(kind=kind, address=message.address, thread=message.thread)
    await enqueue_run_id(session, project_id=project_id, smith_id=route.smith_id, messages=[text],
                         source="deployment", sender=sender, external_key=conversation.key,
                         deployment_id=route.deployment_id,
                         metadata={**conversation.metadata(), "owner_identity": route.owner_identity,
                                   **({"reply_context": dict(message.reply_context)} if message.reply_context else {})})


async def _connected_text(session: AsyncSession, bound: routing.Bound) -> str:
    """Tells the person which smith they now talk to (and which one no longer hears them)."""
    smith = await session.get(Smith, bound.deployment.target_id)
    name = smith.name if smith else "your smith"
    old = await session.get(Smith, bound.replaced.target_id) if bound.replaced else None
    if old is not None and old.id != bound.deployment.target_id:
        return RECONNECTED.format(name=name, old=old.name)
    return CONNECTED.format(name=name)


async def _correction(session: AsyncSession, smith_id: str, message: InboundMessage) -> bool:
    """APR-2: after an Edit tap, the owner's next message is the correction for that paused run."""
    paused = await edit_requested_run(session, smith_id=smith_id)  # a tap earlier in this request counts
    address = paused.run_metadata.get("address") if paused else None
    if paused is None or (address is not None and address != message.address):
        return False  # a run no conversation started (a schedule's) takes its owner's correction anywhere
    await submit_decision(session, actor=None, run_id=paused.run_id, project_id=paused.project_id,
                          decision=Decision(decision="edit", message=message.text[:32_000]),
                          decided_by=message.sender_id)
    return True


async def _approver_of(session: AsyncSession, run: Run, kind: str, address: str) -> str | None:
    """Who may decide the run's approval by tap: the owner of the conversation that started it, or,
    for a run no conversation started (a schedule's), the owner of the smith's conversation where the
    prompt was tapped."""
    if run.deployment_id and run.run_metadata.get("address"):
        return run.run_metadata.get("owner_identity")
    return await conversation_owner(session, smith_id=run.smith_id, kind=kind, address=address)


async def _on_action(session: AsyncSession, integration: Source, action: InboundAction) -> _AfterCommit:
    decision, token = read_button(action.token)
    approval = (await session.execute(select(Approval).where(Approval.callback_token == token))).scalar_one_or_none()
    run = await session.get(Run, approval.run_id) if approval else None
    if approval is None or run is None or run.project_id != integration.project_id or decision is None:
        return _AfterCommit(action=action, answer=INVALID_BUTTON)
    if await _approver_of(session, run, integration.kind, action.address) != action.sender_id:
        return _AfterCommit(action=action, answer=NOT_THE_OWNER)
    if approval.status not in ("pending", "edit_requested") or run.status != "awaiting_approval":
        return _AfterCommit(action=action, answer=ALREADY_DECIDED)
    if decision == "edit" and action.text:  # the correction came with the tap (Slack's Edit modal)
        await submit_decision(session, actor=None, run_id=run.id, project_id=run.project_id,
                              decision=Decision(decision="edit", message=action.text[:32_000]),
                              decided_by=action.sender_id)
        return _AfterCommit(action=action, answer=TapAnswer(OUTCOME_TEXT["edited"]))
    if decision == "edit":
        approval.status = "edit_requested"  # the next message from the owner is the correction
        await enqueue_prompt_outcome(session, run_id=run.id, approval_id=approval.id,
                                     outcome=OUTCOME_TEXT["edit_requested"])
    else:  # the prompt's edit is queued by the decision itself, as for the console and the API
        await submit_decision(session, actor=None, run_id=run.id, project_id=run.project_id,
                              decision=Decision(decision=decision), decided_by=action.sender_id)  # type: ignore[arg-type]
    return _AfterCommit(action=action, answer=TapAnswer(TOASTS[decision], ask_for_edit=decision == "edit"))


async def _on_provider_event(session: AsyncSession, integration: Source, event: ProviderEvent) -> None:
    """What the provider says about an installation (an uninstall revokes its deployments, SL-8) or about
    a message we sent (its delivery status)."""
    if event.type == "uninstalled":
        await installations.uninstall(session, integration_id=integration.id, external_id=event.installation)
    elif event.type == "user_tokens_revoked":
        await installations.drop_user_tokens(session, get_runtime().secrets, integration_id=integration.id,
                                             external_id=event.installation)
    elif event.type == DELIVERY_STATUS:
        await apply_delivery_status(session, project_id=integration.project_id, kind=integration.kind,
                                    data=event.data)
    else:
        log.debug("%s event %s: nothing to do", integration.kind, event.type)
