"""Settings → Integrations (CON-4): one card per registered channel (app/state/integration_cards.py),
saved through the one tenant path (app/services/tenant_setup.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import linkedin_consent, tenant_setup
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.qr import qr_data_uri
from app.services.runtime import get_runtime
from app.services.tenant_setup import IntegrationStatus
from app.state.auth import AuthState, NotSignedIn, describe
from app.state.integration_cards import card_of, put_values, validation_message
from channels import REGISTRY

T = TypeVar("T")


class IntegrationsState(AuthState):
    cards: list[dict[str, Any]] = []
    connecting: str = ""  # the kind whose form is being saved

    def _put_card(self, card: dict[str, Any]) -> None:
        self.cards = [card if current["kind"] == card["kind"] else current for current in self.cards]

    def _set_error(self, kind: str, error: str) -> None:
        self.cards = [{**card, "error": error} if card["kind"] == kind else card for card in self.cards]

    async def _signed_in_call(self, call: Callable[[AsyncSession, Actor], Awaitable[T]]) -> tuple[T | None, Any]:
        """The service call's result, signed in; or None and what to show instead (the sign-in page, or a toast
        with the service's refusal)."""
        try:
            async with self.signed_in() as (session, actor):
                return await call(session, actor), None
        except NotSignedIn:
            return None, rx.redirect("/login")
        except DomainError as exc:
            return None, rx.toast.error(describe(exc))

    @rx.event
    async def load(self) -> Any:
        async def shown(session: AsyncSession, actor: Actor) -> list[IntegrationStatus]:
            runtime = get_runtime()
            return [await tenant_setup.show(session, actor=actor, runtime=runtime, kind=kind) for kind in REGISTRY]

        statuses, problem = await self._signed_in_call(shown)
        if statuses is None:
            return problem
        self.cards = [card_of(REGISTRY[status.kind], status) for status in statuses]
        return None

    @rx.event
    async def connect(self, form: dict[str, Any]) -> Any:
        """A card's form: its hidden ``kind`` names the channel, the other fields are its ``Put``."""
        kind = str(form.get("kind") or "")
        cls = REGISTRY.get(kind)
        if cls is None:
            return
        self._set_error(kind, "")
        self.connecting = kind
        yield
        try:
            body = cls.Put(**put_values(cls, form))
            async with self.signed_in() as (session, actor):
                status = await tenant_setup.connect(session, actor=actor, runtime=get_runtime(), kind=kind, body=body)
        except NotSignedIn:
            yield rx.redirect("/login")
            return
        except ValidationError as exc:
            self._set_error(kind, validation_message(cls, exc))
        except DomainError as exc:
            self._set_error(kind, describe(exc))
        else:
            card = card_of(cls, status)
            self._put_card(card)
            # Clear what was typed (the secrets above all); public fields come back as the saved values.
            yield [rx.call_script(f"document.querySelector('#{card['card_id']} form')?.reset()"),
                   rx.toast.success(" ".join(filter(None, (f"{cls.display_name} connected", card["headline"]))))]
        finally:
            self.connecting = ""

    @rx.event
    async def disconnect(self, kind: str) -> Any:
        cls = REGISTRY.get(kind)
        if cls is None:
            return None
        async def disconnected(session: AsyncSession, actor: Actor) -> IntegrationStatus:
            await tenant_setup.disconnect(session, actor=actor, runtime=get_runtime(), kind=kind)
            return await tenant_setup.show(session, actor=actor, runtime=get_runtime(), kind=kind)

        status, problem = await self._signed_in_call(disconnected)
        if status is None:
            return problem
        self._put_card(card_of(cls, status))
        return rx.toast.success(f"{cls.display_name} disconnected")

    @rx.event
    async def make_consent_link(self, kind: str) -> Any:
        """LinkedIn's one-time consent link for a Page admin (LI-1), shown once with a copy button and a QR code."""
        link, problem = await self._signed_in_call(
            lambda session, actor: linkedin_consent.issue_link(session, actor=actor, runtime=get_runtime()))
        if link is None:
            return problem
        self.cards = [{**card, "consent_link": link.url, "consent_qr": qr_data_uri(link.url),
                       "consent_link_expires": link.expires_at[:16].replace("T", " ")}
                      if card["kind"] == kind else card for card in self.cards]
        return rx.toast.success("Consent link made: it works once, for 7 days")

    @rx.event
    async def set_messaging(self, kind: str, on: bool) -> Any:
        """Switch messages through an approval-gated channel on or off (LI-3); refused without the consent."""
        cls = REGISTRY.get(kind)
        if cls is None or cls.Patch is None:
            return None
        patch = cls.Patch(messaging_enabled=on)
        status, problem = await self._signed_in_call(
            lambda session, actor: tenant_setup.update(session, actor=actor, runtime=get_runtime(), kind=kind,
                                                       body=patch))
        if status is None:
            return problem
        self._put_card(card_of(cls, status))
        return rx.toast.success(f"{cls.display_name} messaging switched {'on' if on else 'off'}")

