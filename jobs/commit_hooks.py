"""Wake-ups that fire when the transaction that made the work commits (issue 19 §5).

A run queued or a send put in the outbox must wake an idle worker or the deliverer, but only once the
row is visible to them: waking before the commit sends them to an empty table, forgetting to wake
leaves them asleep until their next poll. Callers used to wake by hand after committing (eight places;
two bugs came from that rule). Now the code that writes the row marks the session (``on_commit``) and the
wake-up fires from SQLAlchemy's ``after_commit``; a rollback drops it.

Listeners run on the event loop they subscribed from: a transaction committed on another thread (the
scheduler's database thread, ``jobs.db_thread``) hands the call over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger("ingram.commit_hooks")

RUN_QUEUED = "run_queued"  # a run became claimable
OUTBOX_ADDED = "outbox_added"  # an outbox entry is due
_MARKS = "ic_commit_marks"  # key in a session's info: what its open transaction will announce


@dataclass(frozen=True, eq=False)
class Subscription:
    callback: Callable[..., None]
    loop: asyncio.AbstractEventLoop | None


_subscriptions: dict[str, set[Subscription]] = {}


def on_commit(session: AsyncSession | Session, topic: str) -> None:
    """Announce ``topic`` once this session's transaction commits (several marks: one announcement)."""
    target = session.sync_session if isinstance(session, AsyncSession) else session
    target.info.setdefault(_MARKS, set()).add(topic)


def subscribe(topic: str, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (on the caller's event loop) after every commit that announced ``topic``.
    Returns the unsubscribe function."""
    subscription = Subscription(callback, running_loop())
    _subscriptions.setdefault(topic, set()).add(subscription)
    return lambda: _subscriptions.get(topic, set()).discard(subscription)


def announce(topic: str) -> None:
    """Call the topic's subscribers now (a commit did, or another process told us over NOTIFY)."""
    for subscription in list(_subscriptions.get(topic, ())):
        deliver(subscription)


def deliver(subscription: Subscription, *args: Any) -> None:
    """Call ``subscription`` with ``args`` on its own loop; never raises (a commit must not fail for it)."""
    loop = subscription.loop
    try:
        if loop is None or loop is running_loop():
            subscription.callback(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(subscription.callback, *args)
    except Exception:
        log.exception("a commit listener failed")


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for topic in session.info.pop(_MARKS, ()):
        announce(topic)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_MARKS, None)
