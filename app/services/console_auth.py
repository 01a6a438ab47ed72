"""The console's sign-in: one admin account, a password, expiring sessions.

A fresh install has no password. Its first start writes a one-time setup link to the server log;
only someone who can read that log (the operator) can claim the console, so an unclaimed console
on a public address cannot be taken by the first visitor. IC_ADMIN_PASSWORD skips the link.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import hash_token
from app.services import signin_throttle
from app.services.actors import Actor
from app.services.errors import Invalid, Unauthorized
from app.services.events import record_event
from models import ConsoleAccount, ConsoleSession
from models.types import new_id, utcnow

USERNAME = "admin"
MIN_PASSWORD_LENGTH = 10
SETUP_LINK_TTL = timedelta(hours=24)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Opens one transaction (``runtime.transaction``): steps that run scrypt open their own around it.
Transactions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt),
                                dklen=len(expected), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
                      code="password_too_short", field="password")
    if len(password) > 1024:
        raise Invalid("the password is too long", code="password_too_long", field="password")


async def get_account(session: AsyncSession) -> ConsoleAccount | None:
    stmt = select(ConsoleAccount).where(ConsoleAccount.username == USERNAME)
    return (await session.execute(stmt)).scalar_one_or_none()


async def ensure_account(session: AsyncSession, *, project_id: str) -> ConsoleAccount:
    account = await get_account(session)
    if account is not None:
        return account
    account = ConsoleAccount(id=new_id("usr"), project_id=project_id, username=USERNAME)
    try:
        async with session.begin_nested():
            session.add(account)
    except IntegrityError:
        found = await get_account(session)
        assert found is not None
        return found
    return account


async def apply_admin_password(session: AsyncSession, *, account: ConsoleAccount, password: str) -> None:
    """IC_ADMIN_PASSWORD: the configured password always works (re-hashed only if it changed).

    Start-up work: scrypt runs on a thread (off the event loop) though the transaction is open."""
    _check_new_password(password)
    if account.password_hash and await asyncio.to_thread(verify_password, password, account.password_hash):
        return
    account.password_hash = await asyncio.to_thread(hash_password, password)
    account.password_set_at = utcnow()
    account.setup_token_hash = ""
    account.setup_token_expires_at = None
    session.add(account)


async def issue_setup_token(
    session: AsyncSession, *, account: ConsoleAccount, force: bool = False
) -> str | None:
    """A fresh one-time setup token, or None when the console is claimed or a live link exists.

    The conditional update makes concurrent starts agree: exactly one process issues (and logs)
    the link.
    """
    if account.password_hash and not force:
        return None
    now = utcnow()
    expires = account.setup_token_expires_at
    live = bool(account.setup_token_hash) and expires is not None and expires > now
    if live and not force:
        return None
    token = secrets.token_urlsafe(32)
    result = await session.execute(
        update(ConsoleAccount)
        .where(ConsoleAccount.id == account.id,
               ConsoleAccount.setup_token_hash == account.setup_token_hash)
        .values(setup_token_hash=hash_token(token), setup_token_expires_at=now + SETUP_LINK_TTL)
    )
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


async def setup_token_is_valid(session: AsyncSession, token: str) -> bool:
    account = await get_account(session)
    return bool(
        account and token and account.setup_token_hash
        and account.setup_token_expires_at and account.setup_token_expires_at > utcnow()
        and hmac.compare_digest(account.setup_token_hash, hash_token(token))
    )


def _invalid_setup_link() -> Unauthorized:
    return Unauthorized("this setup link is invalid, used or expired; start the server again "
                        "or run `./run.sh --setup-link` for a new one", code="invalid_setup_link")


async def claim_with_setup_token(
    transaction: Transactions, *, token: str, password: str, session_hours: int
) -> str:
    """Sets the password from a valid setup link (used once) and returns a signed-in session.

    The claim is one conditional UPDATE on the link's hash: of concurrent claims exactly one
    changes the row, the others find it used. scrypt runs on a thread between two short
    transactions, never on the event loop or inside a transaction."""
    _check_new_password(password)
    async with transaction() as session:  # cheap refusal first: a forged link costs no scrypt
        if not await setup_token_is_valid(session, token):
            raise _invalid_setup_link()
    password_hash = await asyncio.to_thread(hash_password, password)
    async with transaction() as session:
        now = utcnow()
        claimed = await session.execute(
            update(ConsoleAccount)
            .where(ConsoleAccount.username == USERNAME, ConsoleAccount.setup_token_hash != "",
                   ConsoleAccount.setup_token_hash == hash_token(token),
                   ConsoleAccount.setup_token_expires_at > now)
            .values(password_hash=password_hash, password_set_at=now, setup_token_hash="",
                    setup_token_expires_at=None)
            .returning(ConsoleAccount.id, ConsoleAccount.project_id)
            .execution_options(synchronize_session=False))
        row = claimed.first()
        if row is None:
            raise _invalid_setup_link()
        account_id, project_id = row
        # A new password ends every earlier session.
        await session.execute(delete(ConsoleSession).where(ConsoleSession.account_id == account_id))
        await record_event(session, project_id=project_id, type="console.password_set", data={})
        return await _open_session(session, account_id=account_id, session_hours=session_hours)


async def sign_in(transaction: Transactions, *, password: str, client_address: str,
                  session_hours: int) -> str:
    """A new session for the right password, under the back-off of ``signin_throttle``.

    Three short steps: read the hash and pass the gate (counting the try) in one transaction,
    verify with scrypt on a thread with no transaction open (about 50 ms of CPU that would stall the
    event loop and, on SQLite, hold the write lock for every other request), then forgive the try
    and open the session in a second transaction."""
    client, account_k = signin_throttle.client_key(client_address), signin_throttle.account_key(USERNAME)
    async with transaction() as session:
        account = await get_account(session)
        if account is None or not account.password_hash:
            raise Unauthorized("the console has no password yet: open the setup link from the "
                               "server log", code="console_unclaimed")
        stored_hash, account_id = account.password_hash, account.id
        await signin_throttle.admit(session, client=client, account=account_k, now=utcnow())
    if not await asyncio.to_thread(verify_password, password, stored_hash):
        raise Unauthorized("wrong password", code="wrong_password")  # the try stays counted
    async with transaction() as session:
        account = await get_account(session)
        if account is None or account.password_hash != stored_hash:  # changed meanwhile
            raise Unauthorized("wrong password", code="wrong_password")
        await signin_throttle.forgive(session, client=client, account=account_k)
        return await _open_session(session, account_id=account_id, session_hours=session_hours)


async def _open_session(session: AsyncSession, *, account_id: str, session_hours: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(
        id=new_id("ses"), account_id=account_id, token_hash=hash_token(token),
        expires_at=utcnow() + timedelta(hours=session_hours),
    ))
    await session.flush()
    return token


async def actor_for_session(session: AsyncSession, token: str) -> Actor | None:
    """The console actor for a live session token; None when missing, unknown or expired."""
    if not token:
        return None
    stmt = select(ConsoleSession, ConsoleAccount).join(
        ConsoleAccount, ConsoleAccount.id == ConsoleSession.account_id
    ).where(ConsoleSession.token_hash == hash_token(token))
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    console_session, account = row
    if console_session.expires_at <= utcnow():
        await session.delete(console_session)
        return None
    return Actor(project_id=account.project_id, kind="console", subject=account.username)


async def sign_out(session: AsyncSession, token: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))
