"""Who waits for a run to change is woken when the change commits, not by a timer (issue 19 §1).

``transition`` notes each run it changes on the session; once that transaction commits, every listener
of this process hears the run ids (the MCP ``ask`` watcher, the live streams, the console's live views), on
the event loop it subscribed from. A rollback drops them. Both ride on ``jobs.commit_hooks`` (topic
``run_changed``, the run ids its values), as does the wake-up of this process's idle workers when a run is
queued.
On PostgreSQL the same ids also go out with ``NOTIFY`` inside the transaction (delivered at commit), and
each process's listener (``listen_forever``, one connection) passes them on, so a run finished by a
worker in another process wakes its waiter here too; and a run queued in one process wakes an idle
worker of every other (``note_queued``, ``on_queued``). Waiters keep a slow poll only as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from jobs import commit_hooks

log = logging.getLogger("ingram.run_signals")

CHANNEL = "ic_runs"
QUEUED_CHANNEL = "ic_runs_queued"  # a run became claimable: idle workers of every process look
# Payloads are "<origin>|<run id>": a process skips its own notifications, which its commits announced
# already (hearing them twice sent a second idle worker to find nothing).
ORIGIN = ""


def _new_origin() -> None:
    global ORIGIN
    ORIGIN = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


_new_origin()
os.register_at_fork(after_in_child=_new_origin)  # granian forks its workers from a process that imported this
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
Listener = Callable[[frozenset[str]], None]


def on_queued(listener: Callable[[], None]) -> Callable[[], None]:
    """Hear that a run became claimable: queued in this process (at its commit) or, on PostgreSQL, in
    another. Returns the unsubscribe function."""
    return commit_hooks.subscribe(commit_hooks.RUN_QUEUED, lambda _: listener())


async def note_queued(session: AsyncSession, run_id: str) -> None:
    """Called in the transaction that queued the run (once for several): idle workers of this process and,
    on PostgreSQL, of the others hear it at commit."""
    commit_hooks.on_commit(session, commit_hooks.RUN_QUEUED)
    if session.bind.dialect.name == "postgresql":
        await session.execute(_NOTIFY, {"channel": QUEUED_CHANNEL, "payload": f"{ORIGIN}|{run_id}"})


def subscribe(listener: Listener) -> Callable[[], None]:
    """Hear every committed change of any run (ids only), on the caller's event loop; returns the
    unsubscribe function."""
    return commit_hooks.subscribe(commit_hooks.RUN_CHANGED, listener)


def publish(run_ids: Iterable[str]) -> None:
    commit_hooks.announce(commit_hooks.RUN_CHANGED, frozenset(run_ids))


async def note_changed(session: AsyncSession, run_id: str) -> None:
    """Called in the transaction that changed the run (a transition, a new event): heard once it commits.
    Once per run and transaction."""
    if not commit_hooks.on_commit(session, commit_hooks.RUN_CHANGED, run_id):
        return
    if session.bind.dialect.name == "postgresql":  # other processes hear it at commit, not before
        await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": f"{ORIGIN}|{run_id}"})


async def listen_forever(engine: AsyncEngine, retry_s: float = 2.0) -> None:
    """PostgreSQL only: hear other processes' run changes (``LISTEN``) and publish them here."""
    if engine.dialect.name != "postgresql":
        return
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                await connection.execute(f"LISTEN {QUEUED_CHANNEL}")
                async for notice in connection.notifies():
                    origin, _, run_id = notice.payload.rpartition("|")
                    if origin == ORIGIN:  # this process's own: heard at its commit already
                        continue
                    if notice.channel == QUEUED_CHANNEL:
                        commit_hooks.announce(commit_hooks.RUN_QUEUED)
                    else:
                        publish([run_id])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarting: listen again; waiters poll meanwhile
            log.warning("listening for run changes failed (%s); retrying", type(exc).__name__)
        await asyncio.sleep(retry_s)
