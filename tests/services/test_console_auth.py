"""Console sign-in: one-time setup link, password, expiring sessions."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from sqlmodel import select

from app.bootstrap import prepare
from app.services import console_auth
from app.services.errors import Invalid, Unauthorized
from app.services.runtime import Runtime
from models import ConsoleSession
from models.types import utcnow


async def sign_in(runtime: Runtime, password: str, client: str = "192.0.2.1") -> str:
    return await console_auth.sign_in(runtime.transaction, password=password, client_address=client,
                                      session_hours=1)


def _token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


async def test_fresh_console_issues_one_setup_link_that_works_once(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingram")
    link = await prepare(runtime)
    assert link and link.startswith(f"{runtime.settings.public_url}/setup?token=")
    assert link in caplog.text  # the operator reads it in the server log
    assert await prepare(runtime) is None  # a live link is not replaced on the next start
    token = _token_of(link)

    with pytest.raises(Unauthorized):
        await sign_in(runtime, "anything-at-all")
    async with runtime.transaction() as session:
        assert await console_auth.setup_token_is_valid(session, token)
    with pytest.raises(Invalid):
        await console_auth.claim_with_setup_token(runtime.transaction, token=token, password="short",
                                                  session_hours=1)
    session_token = await console_auth.claim_with_setup_token(
        runtime.transaction, token=token, password="correct horse battery", session_hours=1)
    async with runtime.transaction() as session:
        assert await console_auth.actor_for_session(session, session_token) is not None
    with pytest.raises(Unauthorized):  # the link works once
        await console_auth.claim_with_setup_token(runtime.transaction, token=token,
                                                  password="another password!", session_hours=1)
    with pytest.raises(Unauthorized):
        await sign_in(runtime, "wrong password")
    assert await sign_in(runtime, "correct horse battery")
    assert await prepare(runtime) is None  # a claimed console prints no link


async def test_guessed_setup_tokens_are_rejected(runtime: Runtime) -> None:
    await prepare(runtime)
    async with runtime.transaction() as session:
        for guess in ("", "x", "A" * 43):
            assert not await console_auth.setup_token_is_valid(session, guess)


async def test_concurrent_starts_issue_exactly_one_link(runtime: Runtime) -> None:
    await prepare(runtime, force_setup_link=False)  # creates project and account
    async with runtime.transaction() as session:
        account = await console_auth.get_account(session)
        assert account is not None
        account.setup_token_hash = ""
        account.setup_token_expires_at = None

    results = await asyncio.gather(*(prepare(runtime) for _ in range(5)), return_exceptions=True)
    links = [r for r in results if isinstance(r, str)]
    assert len(links) == 1, results


async def test_admin_password_setting_skips_the_link(runtime: Runtime) -> None:
    configured = dataclasses.replace(runtime.settings, admin_password="from-the-environment")
    rt = Runtime(settings=configured, engine=runtime.engine, sessions=runtime.sessions,
                 secrets=runtime.secrets)
    assert await prepare(rt) is None
    assert await sign_in(rt, "from-the-environment")


async def test_sessions_expire_and_sign_out_ends_them(runtime: Runtime) -> None:
    configured = dataclasses.replace(runtime.settings, admin_password="from-the-environment")
    rt = Runtime(settings=configured, engine=runtime.engine, sessions=runtime.sessions,
                 secrets=runtime.secrets)
    await prepare(rt)
    live = await sign_in(rt, "from-the-environment")
    stale = await sign_in(rt, "from-the-environment")
    async with rt.transaction() as session:
        rows = (await session.execute(select(ConsoleSession))).scalars().all()
        for row in rows:
            if row.token_hash == console_auth.hash_token(stale):
                row.expires_at = utcnow() - timedelta(seconds=1)
    async with rt.transaction() as session:
        assert await console_auth.actor_for_session(session, stale) is None
        actor = await console_auth.actor_for_session(session, live)
        assert actor is not None and actor.is_admin
        await console_auth.sign_out(session, live)
    async with rt.transaction() as session:
        assert await console_auth.actor_for_session(session, live) is None
        assert await console_auth.actor_for_session(session, "") is None


def test_password_hashes_are_salted_and_verify() -> None:
    first = console_auth.hash_password("a long password")
    second = console_auth.hash_password("a long password")
    assert first != second
    assert console_auth.verify_password("a long password", first)
    assert not console_auth.verify_password("a long passworD", first)
    assert not console_auth.verify_password("x", "garbage")
