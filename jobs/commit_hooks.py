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

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger("ingram.commit_hooks")

RUN_QUEUED = "run_queued"  # a run became claimable
RUN_CHANGED = "run_changed"  # values: the ids of runs changed (a transition, a new event; jobs.run_signals)
OUTBOX_ADDED = "outbox_added"  # an outbox entry is due
_MARKS = "ic_commit_marks"  # key in a session's info: topic -> values its open transaction will announce
Callback = Callable[[frozenset[str]], None]


@dataclass(frozen=True, eq=False)
class _Subscription:
    callback: Callback
    loop: asyncio.AbstractEventLoop | None


_subscriptions: dict[str, set[_Subscription]] = {}


def on_commit(session: AsyncSession | Session, topic: str, value: str = "") -> bool:
    """Announce ``topic``, with ``value`` among its values, once this session's transaction commits (several
    marks: one announcement). False when this transaction had marked ``value`` already."""
    target = session.sync_session if isinstance(session, AsyncSession) else session
    values = target.info.setdefault(_MARKS, {}).setdefault(topic, set())
    if value in values:
        return False
    values.add(value)
    return True


def subscribe(topic: str, callback: Callback) -> Callable[[], None]:
    """Call ``callback`` with the announced values (on the caller's event loop) after every commit that
    announced ``topic``. Returns the unsubscribe function."""
    subscription = _Subscription(callback, _running_loop())
    _subscriptions.setdefault(topic, set()).add(subscription)
    return lambda: _subscriptions.get(topic, set()).discard(subscription)


def announce(topic: str, values: frozenset[str] = frozenset()) -> None:
    """Call the topic's subscribers now (a commit did, or another process told us over NOTIFY)."""
    for subscription in list(_subscriptions.get(topic, ())):
        _deliver(subscription, values)


def _deliver(subscription: _Subscription, values: frozenset[str]) -> None:
    """On the subscriber's own loop; never raises (neither a commit nor the other subscribers wait on it)."""
    loop = subscription.loop
    try:
        if loop is None or loop is _running_loop():
            subscription.callback(values)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(subscription.callback, values)
    except Exception:
        log.exception("a commit listener failed")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for topic, values in session.info.pop(_MARKS, {}).items():
        announce(topic, frozenset(values))


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_MARKS, None)
