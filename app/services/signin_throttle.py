"""Back-off for failed console sign-ins, per client address and per account, in the database.

Rules (issue 13: ten wrong passwords from anyone used to lock the admin out, per process):

- A client address gets ``CLIENT_FREE_FAILURES`` free failures, then waits 1, 2, 4 ... seconds
  (at most ``CLIENT_MAX_DELAY_S``) after each further failure before it may try again.
- The account counts every failure. Past ``ACCOUNT_FREE_FAILURES`` it slows down, the same way but
  capped lower, only clients that have failed themselves: a guesser spread over many addresses gets
  one free try per address, while a client with no failures (the admin elsewhere, with the right
  password) is never held back. The right password from another client always works.
- A key quiet for ``FORGET_AFTER_S`` starts again from zero; a right password clears its client.

Rows live in ``signin_attempt`` so the back-off survives restarts and is shared by every process.
An attempt is counted as a failure before the password is checked (and forgiven when it proves
right), so parallel guesses cannot all slip through one reading of the gate.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import RateLimited
from models import SigninAttempt

log = logging.getLogger("ingram.console")

CLIENT_FREE_FAILURES = 5
CLIENT_MAX_DELAY_S = 900.0
ACCOUNT_FREE_FAILURES = 20
ACCOUNT_MAX_DELAY_S = 300.0
FORGET_AFTER_S = 3600.0


def client_key(address: str) -> str:
    """One key per client: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation, so
    rotating through it does not reset the count)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "client:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"client:{ip.ipv4_mapped}"
        return f"client:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"client:{ip}"


def account_key(username: str) -> str:
    return f"account:{username}"


@dataclass(frozen=True)
class _Count:
    failures: int
    last_failure_at: datetime


def _live_failures(count: _Count | None, now: datetime) -> int:
    if count is None or (now - count.last_failure_at).total_seconds() > FORGET_AFTER_S:
        return 0
    return count.failures


def _wait_s(count: _Count | None, now: datetime, *, free: int, cap: float) -> float:
    excess = _live_failures(count, now) - free
    if count is None or excess <= 0:
        return 0.0
    delay = min(cap, 2.0 ** min(excess - 1, 30))
    return max(0.0, delay - (now - count.last_failure_at).total_seconds())


async def admit(session: AsyncSession, *, client: str, account: str, now: datetime) -> None:
    """Refuses with ``signin_throttled`` (and ``retry_after_s``) while this client must wait; else
    counts the attempt as a failure of the client and the account until ``forgive``."""
    await session.execute(delete(SigninAttempt).where(
        SigninAttempt.last_failure_at < now - timedelta(seconds=FORGET_AFTER_S)
    ).execution_options(synchronize_session=False))
    keys = sorted({client, account})  # one order everywhere: no deadlock between two attempts
    # Rows first (ON CONFLICT DO NOTHING waits for a concurrent inserter), then locked: on PostgreSQL
    # the gate and the count are one step per key even for a burst of first tries from a new
    # address. SQLite's transactions already run one at a time (BEGIN IMMEDIATE).
    dialect_insert = sqlite_insert if session.bind.dialect.name == "sqlite" else pg_insert
    await session.execute(dialect_insert(SigninAttempt)
                          .values([{"key": key, "failures": 0, "last_failure_at": now} for key in keys])
                          .on_conflict_do_nothing(index_elements=["key"]))
    rows = await session.execute(
        select(SigninAttempt.key, SigninAttempt.failures, SigninAttempt.last_failure_at)
        .where(SigninAttempt.key.in_(keys)).with_for_update())
    counts = {key: _Count(failures, last) for key, failures, last in rows}
    wait = _wait_s(counts.get(client), now, free=CLIENT_FREE_FAILURES, cap=CLIENT_MAX_DELAY_S)
    if _live_failures(counts.get(client), now) > 0:  # the account's count slows only failed clients
        wait = max(wait, _wait_s(counts.get(account), now, free=ACCOUNT_FREE_FAILURES,
                                 cap=ACCOUNT_MAX_DELAY_S))
    if wait > 0:
        seconds = math.ceil(wait)
        raise RateLimited(f"too many failed sign-ins; try again in {seconds} s",
                          code="signin_throttled", details={"retry_after_s": seconds})
    stale = SigninAttempt.last_failure_at < now - timedelta(seconds=FORGET_AFTER_S)
    counted = await session.execute(
        update(SigninAttempt).where(SigninAttempt.key.in_(keys))
        .values(failures=case((stale, 1), else_=SigninAttempt.failures + 1), last_failure_at=now)
        .returning(SigninAttempt.key, SigninAttempt.failures)
        .execution_options(synchronize_session=False))
    for key, failures in counted:
        free = CLIENT_FREE_FAILURES if key == client else ACCOUNT_FREE_FAILURES
        if failures == free + 1:  # one line when a streak starts to wait, not one per refusal
            log.warning("console sign-in: %s has failed %d times; further tries now wait", key, failures - 1)


async def forgive(session: AsyncSession, *, client: str, account: str) -> None:
    """The password was right: the client starts clean and the account's count gives back this try."""
    await session.execute(delete(SigninAttempt).where(SigninAttempt.key == client)
                          .execution_options(synchronize_session=False))
    await session.execute(update(SigninAttempt)
                          .where(SigninAttempt.key == account, SigninAttempt.failures > 0)
                          .values(failures=SigninAttempt.failures - 1)
                          .execution_options(synchronize_session=False))

