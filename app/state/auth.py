"""Console sign-in state. Every console page's state derives from ``AuthState``.

The browser holds only an opaque session cookie; the server resolves it to the console actor and
calls the same services as /v1, so no API token ever reaches the browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import console_auth
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.runtime import get_runtime, transaction
from app.settings import get_settings


class NotSignedIn(Exception):
    pass


def describe(exc: Exception) -> str:
    """A person-readable message for a domain or validation error."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return f"{field}: {message}" if field else message
    if isinstance(exc, DomainError):
        return exc.message
    return "Something went wrong; the server log has the details."


class AuthState(rx.State):
    # Secure whenever the console is served over https (IC_PUBLIC_URL), so it never travels in clear.
    session_token: str = rx.Cookie("", name="ic_session", same_site="strict",
                                   secure=get_settings().public_url.startswith("https://"))
    auth_error: str = ""
    _setup_token: str = ""  # backend only: a used setup token must never go back to the browser
    setup_valid: bool = False
    setup_checked: bool = False
    busy: bool = False

    @contextlib.asynccontextmanager
    async def signed_in(self) -> AsyncIterator[tuple[AsyncSession, Actor]]:
        """One transaction with the console actor; raises NotSignedIn for a dead session."""
        async with transaction() as session:
            actor = await console_auth.actor_for_session(session, self.session_token)
            if actor is None:
                raise NotSignedIn
            yield session, actor

    async def _change(self, change: Callable[[AsyncSession, Actor], Awaitable[object]], done: str,
                      then: Callable[[], Awaitable[object]]) -> Any:
        """A console action through the services, in one transaction; then ``then`` (the page reloads
        its list) and the ``done`` toast. A dead session goes to sign-in; a refusal is an error toast
        with the service's own message."""
        try:
            async with self.signed_in() as (session, actor):
                await change(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        await then()
        return rx.toast.success(done)

    @rx.event
    async def sign_in(self, form: dict[str, Any]) -> Any:
        self.auth_error = ""
        try:
            # The socket's peer, or the X-Forwarded-For hop Reflex trusts (IC_TRUSTED_PROXY_HOPS).
            token = await console_auth.sign_in(
                transaction, password=str(form.get("password", "")),
                client_address=self.router.session.client_ip,
                session_hours=get_runtime().settings.session_hours,
            )
        except DomainError as exc:
            # The code too, so a person locked out can quote it (README lists it).
            throttled = exc.code == "signin_throttled"
            self.auth_error = f"{describe(exc)} ({exc.code})" if throttled else describe(exc)
            return None
        self.session_token = token
        return rx.redirect("/")

    @rx.event
    async def sign_out(self) -> Any:
        async with transaction() as session:
            await console_auth.sign_out(session, self.session_token)
        self.session_token = ""
        return rx.redirect("/login")

    @rx.event
    async def load_setup(self) -> None:
        self.setup_checked = False
        self._setup_token = str(self.router.url.query_parameters.get("token", ""))
        async with transaction() as session:
            self.setup_valid = await console_auth.setup_token_is_valid(session, self._setup_token)
        self.setup_checked = True

    @rx.event
    async def claim(self, form: dict[str, Any]) -> Any:
        self.auth_error = ""
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            self.auth_error = "The two passwords differ."
            return None
        try:
            token = await console_auth.claim_with_setup_token(
                transaction, token=self._setup_token, password=password,
                session_hours=get_runtime().settings.session_hours,
            )
        except DomainError as exc:
            self.auth_error = describe(exc)
            return None
        self.session_token = token
        self._setup_token = ""  # spent
        return rx.redirect("/")

    @rx.event
    async def require_sign_in(self) -> Any:
        try:
            async with self.signed_in():
                return None
        except NotSignedIn:
            return rx.redirect("/login")
