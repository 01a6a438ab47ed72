"""The outbox: every outbound provider message, sent once, in order per conversation.

An entry is inserted in the same transaction as the step that decided to send (unique
``idempotency_key`` = run + step), so a re-executed step never sends twice. A deliverer claims due
entries (one at a time per conversation, oldest first), sends through the channel and records the
outcome. Retryable failures back off (honouring the provider's retry-after) and end as dead letters
with the reason after ``MAX_ATTEMPTS``; a user who blocked the bot is a dead letter at once.

A crash between "sending" and the outcome leaves the entry ``unknown``: it is NOT resent
automatically, because the provider may already have delivered it and a reply must never arrive
twice. It shows on the run and in the dead-letter list with a replay action.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from channels.base import Channel
from channels.redact import redact
from channels.types import UNAUTHORIZED, SendResult
from jobs import commit_hooks
from jobs.events import append_run_event
from jobs.outcomes import finish_entry, mark_integration_failing
from jobs.waiting import idle_wait, inbound_first
from models import OutboxEntry
from models.store.inbound import last_inbound_at
from models.store.outbox import insert_outbox_once, mark_sent
from models.types import utcnow

log = logging.getLogger("ingram.delivery")

MAX_ATTEMPTS = 8
SEND_LEASE = timedelta(seconds=60)  # longer than a send can take (PTB timeouts plus one retry)
BACKOFF_CAP_S = 300.0
EDIT_APPROVAL = "edit_approval"  # an entry with this payload key edits a sent prompt instead of sending
OUTCOME_MARK = "outcome:"
COALESCE_S = 0.003

ChannelFor = Callable[[AsyncSession, str, str], Awaitable[Channel | None]]  # (session, project id, kind)

async def enqueue_send(
    session: AsyncSession, *, project_id: str, kind: str, address: str, payload: dict[str, Any],
    idempotency_key: str, run_id: str | None = None, deployment_id: str | None = None,
) -> bool:
    """Insert once (one statement); False when an entry with this key exists already."""
    commit_hooks.on_commit(session, commit_hooks.OUTBOX_ADDED)  # the deliverers look once this commits
    return await insert_outbox_once(session, project_id=project_id, kind=kind, address=address, payload=payload,
                                    idempotency_key=idempotency_key, run_id=run_id, deployment_id=deployment_id)


def prompt_key(run_id: str, approval_id: str) -> str:
    """Idempotency keys of an approval prompt's outbox entries start with this."""
    return f"{run_id}:approval:{approval_id}:"


async def enqueue_prompt_outcome(session: AsyncSession, *, run_id: str, approval_id: str, outcome: str) -> bool:
    """Show a decision on the approval prompt in the chat (and drop its buttons), however it was
    decided: a tap, the console or the API. Queued behind the prompt in its conversation, so the
    edit goes out after the prompt; False when the prompt went to no channel (API, MCP runs)."""
    prefix = prompt_key(run_id, approval_id)
    prompt = (await session.execute(  # the prompt's last part: the one with the buttons
        select(OutboxEntry).where(OutboxEntry.idempotency_key.startswith(prefix, autoescape=True),
                                  ~OutboxEntry.idempotency_key.contains(OUTCOME_MARK, autoescape=True))
        .order_by(OutboxEntry.id.desc()).limit(1)
    )).scalar_one_or_none()
    if prompt is None:
        return False
    return await enqueue_send(session, project_id=prompt.project_id, kind=prompt.kind, address=prompt.address,
                              payload={EDIT_APPROVAL: {"prompt_id": prompt.id, "text": outcome}},
                              idempotency_key=f"{prefix}{OUTCOME_MARK}{outcome}",
                              run_id=run_id, deployment_id=prompt.deployment_id)


class Pacer:
    """Per-conversation send pacing for providers that ask for it (Slack: about one message a second
    per channel, short bursts allowed): a token bucket of ``burst`` sends refilled at ``rate`` per
    second. In-process; a 429 from the provider still backs off through the outbox as before."""

    MAX_TRACKED = 4096

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # conversation -> (tokens, at)

    def delay(self, conversation: tuple[str, str], rate: float, burst: int, now: float) -> float:
        """Seconds to wait before this send (0 for none), taking its token."""
        tokens, at = self._buckets.get(conversation, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        if len(self._buckets) >= self.MAX_TRACKED:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < burst / rate}
        # As of when this send goes out; a send queued behind it counts from then.
        self._buckets[conversation] = (tokens + wait * rate - 1, now + wait)
        return wait


def backoff_s(attempts: int, retry_after: float | None) -> float:
    return min(BACKOFF_CAP_S, max(retry_after or 0.0, 0.5 * 2 ** max(attempts - 1, 0)))


class Deliverer:
    """Sends due outbox entries with bounded concurrency (one at a time per conversation)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], channel_for: ChannelFor, *,
                 concurrency: int = 64, poll_interval_s: float = 0.2,
                 send_lease: timedelta = SEND_LEASE) -> None:
        self.sessions = sessions
        self.channel_for = channel_for
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self.send_lease = send_lease
        self.sent = 0
        self._outcomes: list[tuple[OutboxEntry, str | None, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._pacer = Pacer()
        # Built once (the loop runs it after every delivery): due entries, the oldest per conversation.
        earlier = aliased(OutboxEntry)
        busy = exists().where(and_(earlier.kind == OutboxEntry.kind, earlier.address == OutboxEntry.address,
                                   earlier.id < OutboxEntry.id, earlier.status.in_(("pending", "sending"))))
        self._due = (select(OutboxEntry.id)
                     .where(OutboxEntry.status == "pending", OutboxEntry.next_attempt_at <= bindparam("now"), ~busy)
                     .order_by(OutboxEntry.id).limit(concurrency))

    async def run_forever(self) -> None:
        stop_hearing = commit_hooks.subscribe(commit_hooks.OUTBOX_ADDED, lambda _: self._wake.set())
        try:
            next_recovery = 0.0
            while True:
                room = self.concurrency - len(self._inflight)
                # Cleared before the claim, not after: an entry committed while the claim runs wakes the
                # next round instead of waiting for the poll.
                self._wake.clear()
                try:
                    if asyncio.get_running_loop().time() >= next_recovery:
                        await self._recover()
                        next_recovery = asyncio.get_running_loop().time() + self.send_lease.total_seconds() / 2
                    await inbound_first()
                    claimed = await self._claim(room)
                except Exception:  # the database hiccupped: the loop must outlive it
                    log.exception("outbox: claiming failed; retrying")
                    claimed = []
                for entry, channel, refused in claimed:
                    task = asyncio.create_task(self._deliver(entry, channel, refused))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if room == 0 or len(claimed) < room:  # all that was due is taken: wait for more (issue 19 §2)
                    await idle_wait(self._wake, self.poll_interval_s)
                    # Let deliveries finishing together wake one claim, not one each.
                    await asyncio.sleep(COALESCE_S)
        finally:
            stop_hearing()
            for task in self._inflight:
                task.cancel()
            if self._recorder is not None:
                self._recorder.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The entry stays "sending" until its lease expires; recovery then marks it unknown.
            log.error("outbox: a delivery failed to record its outcome", exc_info=task.exception())
        self._wake.set()  # the conversation's next entry may now go

    async def _recover(self) -> None:
        """Entries left "sending" by a crashed process: outcome unknown, never resent blindly."""
        async with self.sessions() as session, session.begin():
            stale = (await session.execute(select(OutboxEntry).where(
                OutboxEntry.status == "sending", OutboxEntry.next_attempt_at < utcnow()))).scalars().all()
            for entry in stale:
                await finish_entry(session, entry, "unknown",
                                   "the server stopped while sending; the provider may or may not have "
                                   "delivered it (replay to send again)")

    async def _claim(self, room: int) -> list[tuple[OutboxEntry, Channel | None, SendResult | None]]:
        """Due entries (the oldest of each conversation), marked "sending", with their channels."""
        if room <= 0:
            return []
        now = utcnow()
        async with self.sessions() as session, session.begin():
            candidates = (await session.execute(self._due, {"now": now})).scalars().all()[:room]
            if not candidates:
                return []
            # Conditional on still pending: another process may have claimed some meanwhile.
            claimed = (await session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(candidates), OutboxEntry.status == "pending")
                .values(status="sending", attempts=OutboxEntry.attempts + 1, next_attempt_at=now + self.send_lease)
                .returning(OutboxEntry).execution_options(synchronize_session=False, populate_existing=True)
            )).scalars().all()
            channels: dict[tuple[str, str], Channel | None] = {}
            for entry in claimed:
                key = (entry.project_id, entry.kind)
                if key not in channels:
                    channels[key] = await self.channel_for(session, *key)
            refused: dict[str, SendResult] = {}
            for entry in claimed:
                channel = channels[(entry.project_id, entry.kind)]
                if channel is not None and channel.reply_window is not None:
                    closed = await _outside_window(session, channel, entry, now)
                    if closed is not None:
                        refused[entry.id] = closed
        return sorted(((entry, channels[(entry.project_id, entry.kind)], refused.get(entry.id)) for entry in claimed),
                      key=lambda claim: claim[0].id)

    async def _deliver(self, entry: OutboxEntry, channel: Channel | None, refused: SendResult | None) -> None:
        entry_id = entry.id
        if refused is not None:  # outside the channel's reply window: the provider is not asked
            result = refused
        elif channel is None:
            result = SendResult.failed("not_configured", f"no {entry.kind} integration is configured",
                                       retryable=False)
        else:
            if channel.sends_per_second:  # the entry is claimed and its conversation waits for it: pace here
                loop = asyncio.get_running_loop()
                wait = self._pacer.delay((entry.kind, entry.address), channel.sends_per_second, channel.send_burst,
                                         loop.time())
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                result = await self._send_or_edit(channel, entry)
            except Exception as exc:  # a channel must not raise; if it does, keep the entry visible
                log.exception("channel %s raised while sending %s", entry.kind, entry.id)
                result = SendResult.failed("channel_error", f"{type(exc).__name__}: {exc}", retryable=True)
        if result.ok:  # the common case: recorded together with the other sends that ended meanwhile
            await self._record_sent(entry, result.provider_message_id)
            return
        async with self.sessions() as session, session.begin():
            entry = await session.get(OutboxEntry, entry_id, populate_existing=True)
            assert entry is not None
            if result.retryable and entry.attempts < MAX_ATTEMPTS:
                entry.status = "pending"
                entry.last_error = redact(f"{result.error_code}: {result.error}")
                entry.next_attempt_at = utcnow() + timedelta(seconds=backoff_s(entry.attempts, result.retry_after))
            else:
                reason = f"{result.error_code}: {result.error}"
                if result.retryable:
                    reason = f"gave up after {entry.attempts} attempts; last error {reason}"
                await finish_entry(session, entry, "dead", reason)
                if result.error_code == UNAUTHORIZED:  # an expired or revoked token: every send will fail
                    await mark_integration_failing(session, project_id=entry.project_id, kind=entry.kind,
                                                   reason=f"{result.error_code}: {result.error}")

    async def _record_sent(self, entry: OutboxEntry, provider_message_id: str | None) -> None:
        """Mark the entry sent; returns once that committed. Sends that end while a recording
        transaction runs wait for the next one, so a burst of replies shares one transaction
        instead of paying one each."""
        recorded = asyncio.get_running_loop().create_future()
        recorded.add_done_callback(_consume)  # read even when this delivery was cancelled meanwhile
        self._outcomes.append((entry, provider_message_id, recorded))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_outcomes())
        await asyncio.shield(recorded)  # a cancelled delivery does not cancel the others' record

    async def _record_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                async with self.sessions() as session, session.begin():
                    await mark_sent(session, sent=[(entry.id, pmid) for entry, pmid, _ in batch], sent_at=utcnow())
                    for entry, pmid, _ in batch:
                        if entry.run_id:
                            await append_run_event(session, run_id=entry.run_id, type="delivery.sent", data={
                                "outbox_id": entry.id, "kind": entry.kind, "status": "sent", "error": None,
                                "provider_message_id": pmid})
            except Exception as exc:  # the entries stay "sending": recovery marks them unknown, never resent
                for _, _, recorded in batch:
                    if not recorded.done():
                        recorded.set_exception(exc)
                continue
            self.sent += len(batch)
            for _, _, recorded in batch:
                if not recorded.done():
                    recorded.set_result(None)

    async def _send_or_edit(self, channel: Channel, entry: OutboxEntry) -> SendResult:
        edit = entry.payload.get(EDIT_APPROVAL)
        if edit is None:
            return await channel.send(entry.address, entry.payload)
        async with self.sessions() as session:
            prompt = await session.get(OutboxEntry, edit["prompt_id"])
        if prompt is None or not prompt.provider_message_id:
            return SendResult.failed("prompt_not_delivered", "the approval prompt never reached the chat, so "
                                     "there is nothing to edit", retryable=False)
        return await channel.edit_approval(entry.address, prompt.provider_message_id, str(edit["text"]))

async def _outside_window(session: AsyncSession, channel: Channel, entry: OutboxEntry,
                          now: datetime) -> SendResult | None:
    """The channel's refusal when the person last wrote longer ago than its reply window (or never)."""
    assert channel.reply_window is not None
    last = await last_inbound_at(session, project_id=entry.project_id, kind=entry.kind, address=entry.address)
    if last is not None and now - last <= channel.reply_window:
        return None
    return channel.window_closed(last)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
