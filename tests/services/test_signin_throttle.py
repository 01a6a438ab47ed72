"""Console sign-in hardening (issue 13 §5): back-off per client and per account in the database,
scrypt off the event loop and outside transactions, and a setup link with exactly one winner."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from app.bootstrap import prepare
from app.services import console_auth, signin_throttle
from app.services.errors import RateLimited, Unauthorized
from app.services.runtime import Runtime
from models import ConsoleAccount, SigninAttempt
from models.types import utcnow

PASSWORD = "the right password"
ATTACKER = "203.0.113.66"
ADMIN = "198.51.100.7"


@pytest.fixture
async def claimed(runtime: Runtime) -> Runtime:
    configured = dataclasses.replace(runtime.settings, admin_password=PASSWORD)
    rt = Runtime(settings=configured, engine=runtime.engine, sessions=runtime.sessions, secrets=runtime.secrets)
    await prepare(rt)
    return rt


async def sign_in(runtime: Runtime, password: str, client: str) -> str:
    return await console_auth.sign_in(runtime.transaction, password=password, client_address=client,
                                      session_hours=1)


async def fail_until_throttled(runtime: Runtime, client: str, limit: int = 50) -> RateLimited:
    for _ in range(limit):
        try:
            await sign_in(runtime, "a wrong guess", client)
        except RateLimited as exc:
            return exc
        except Unauthorized as exc:
            assert exc.code == "wrong_password"
    raise AssertionError(f"{client} was never throttled")


async def test_a_flood_from_one_address_never_locks_the_admin_out_elsewhere(
    claimed: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingram.console")
    throttled = await fail_until_throttled(claimed, ATTACKER)
    assert [r.getMessage() for r in caplog.records] == [  # one line for the streak, not one per try
        f"console sign-in: client:{ATTACKER} has failed 5 times; further tries now wait"]
    assert throttled.code == "signin_throttled"
    assert int(str(throttled.details["retry_after_s"])) >= 1
    # The attacker stays refused, even with the right password, while it must wait...
    with pytest.raises(RateLimited):
        await sign_in(claimed, PASSWORD, ATTACKER)
    # ...and the admin on another address gets in at once, with no wait.
    assert await sign_in(claimed, PASSWORD, ADMIN)


async def test_a_burst_of_parallel_guesses_from_a_new_address_passes_the_gate_only_a_few_times(
    claimed: Runtime,
) -> None:
    guesses = 16
    results = await asyncio.gather(*(sign_in(claimed, f"guess {i}", ATTACKER) for i in range(guesses)),
                                   return_exceptions=True)
    wrong = [r for r in results if isinstance(r, Unauthorized) and r.code == "wrong_password"]
    throttled = [r for r in results if isinstance(r, RateLimited)]
    # Each try is counted before scrypt runs, under a row lock: parallel tries cannot all read
    # "no failures yet". Six pass (five free, the sixth starts the wait), the rest are refused.
    assert len(wrong) == signin_throttle.CLIENT_FREE_FAILURES + 1, results
    assert len(throttled) == guesses - len(wrong), results


async def test_the_back_off_is_in_the_database_so_restarts_and_other_processes_see_it(
    claimed: Runtime,
) -> None:
    await fail_until_throttled(claimed, ATTACKER)
    # Another process: its own engine and sessions on the same database.
    other = Runtime.build(claimed.settings)
    try:
        with pytest.raises(RateLimited):
            await sign_in(other, PASSWORD, ATTACKER)
        async with other.transaction() as session:
            row = await session.get(SigninAttempt, signin_throttle.client_key(ATTACKER))
            assert row is not None and row.failures > signin_throttle.CLIENT_FREE_FAILURES
            # Once the wait has passed, the address may try again (and the right password works).
            await session.execute(update(SigninAttempt).values(last_failure_at=utcnow() - timedelta(hours=2)))
        assert await sign_in(other, PASSWORD, ATTACKER)
    finally:
        await other.close()


async def test_many_addresses_slow_only_clients_that_failed(claimed: Runtime) -> None:
    # A guesser spread over many addresses: each fails once, so no address hits its own limit.
    for i in range(signin_throttle.ACCOUNT_FREE_FAILURES + 2):
        with pytest.raises(Unauthorized):
            await sign_in(claimed, "a wrong guess", f"203.0.113.{i + 1}")
    # An address that has failed now waits on the account's count...
    with pytest.raises(RateLimited) as refused:
        await sign_in(claimed, "another guess", "203.0.113.1")
    assert refused.value.code == "signin_throttled"
    # ...while a client with no failures is not held back at all.
    assert await sign_in(claimed, PASSWORD, ADMIN)


def test_client_keys_group_an_ipv6_subscriber() -> None:
    key = signin_throttle.client_key
    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") != key("2001:db8:1:3::1")
    assert key("::ffff:192.0.2.1") == key("192.0.2.1") == "client:192.0.2.1"
    assert key("") == key("not an address") == "client:unknown"


async def test_scrypt_runs_on_a_thread_with_no_transaction_open(
    claimed: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_url = make_url(claimed.settings.database_url)
    if sync_url.drivername.startswith("sqlite"):
        sync_url = sync_url.set(drivername="sqlite")
    observed: list[tuple[bool, int]] = []
    real_verify = console_auth.verify_password

    def watching_verify(password: str, stored: str) -> bool:
        # Another connection sees this attempt already counted: its transaction has committed.
        engine = create_engine(sync_url)
        try:
            with engine.connect() as conn:
                failures = conn.execute(
                    select(SigninAttempt.failures).where(SigninAttempt.key == signin_throttle.client_key(ADMIN))
                ).scalar_one()
        finally:
            engine.dispose()
        observed.append((threading.current_thread() is threading.main_thread(), failures))
        return real_verify(password, stored)

    monkeypatch.setattr(console_auth, "verify_password", watching_verify)
    assert await sign_in(claimed, PASSWORD, ADMIN)
    assert observed == [(False, 1)]  # off the event loop's thread; the gate's transaction committed
    async with claimed.transaction() as session:  # and the right password forgave the try
        assert await session.get(SigninAttempt, signin_throttle.client_key(ADMIN)) is None


async def test_concurrent_claims_of_one_setup_link_have_exactly_one_winner(runtime: Runtime) -> None:
    link = await prepare(runtime)
    assert link
    token = link.split("token=", 1)[1]

    async def claim(i: int) -> str:
        return await console_auth.claim_with_setup_token(
            runtime.transaction, token=token, password=f"password number {i}", session_hours=1)

    results = await asyncio.gather(*(claim(i) for i in range(6)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, Unauthorized) and r.code == "invalid_setup_link"]
    assert len(winners) == 1 and len(losers) == 5, results
    # The password is the winner's: its session works, and exactly one password_set event.
    async with runtime.transaction() as session:
        assert await console_auth.actor_for_session(session, winners[0]) is not None
        account = (await session.execute(select(ConsoleAccount))).scalar_one()
        assert account.setup_token_hash == "" and account.password_hash
        events = (await session.execute(
            text("SELECT count(*) FROM event WHERE type = 'console.password_set'"))).scalar_one()
        assert events == 1
