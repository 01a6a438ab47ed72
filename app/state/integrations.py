"""Settings → Integrations (CON-4): connect each provider once for the project."""

from __future__ import annotations

from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.services import telegram
from app.services.errors import DomainError
from app.services.integrations import find_integration
from app.services.runtime import get_runtime
from app.services.telegram import TelegramPut, TelegramView
from app.state.auth import AuthState, NotSignedIn, describe


class IntegrationsState(AuthState):
    telegram: dict[str, str] = {}
    telegram_steps: list[str] = []
    form_error: str = ""
    connecting: bool = False

    def _show(self, view: TelegramView) -> None:
        self.telegram = {
            "configured": "yes" if view.configured else "",
            "bot_username": view.bot_username or "", "mode": view.mode or "",
            "webhook_url": view.webhook_url or "", "last_error": view.last_error or "",
            "last_delivery_at": (view.last_delivery_at or "")[:19].replace("T", " "),
            "token_hint": (view.bot_token or {}).get("last4", ""),
        }
        self.telegram_steps = view.steps

    @rx.event
    async def load(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                found = await find_integration(session, project_id=actor.project_id, kind="telegram")
                self._show(TelegramView.of(found, get_runtime()))
        except NotSignedIn:
            return rx.redirect("/login")
        return None

    @rx.event
    async def connect_telegram(self, form: dict[str, Any]) -> Any:
        self.form_error = ""
        self.connecting = True
        yield
        try:
            body = TelegramPut(bot_token=str(form.get("bot_token", "")).strip())
            async with self.signed_in() as (session, actor):
                integration = await telegram.connect(session, actor=actor, runtime=get_runtime(), body=body)
                self._show(TelegramView.of(integration, get_runtime()))
        except NotSignedIn:
            yield rx.redirect("/login")
            return
        except ValidationError:
            self.form_error = "That does not look like a bot token (it looks like 123456789:AA…)."
        except DomainError as exc:
            self.form_error = describe(exc)
        else:
            yield rx.toast.success(f"Connected @{self.telegram['bot_username']}")
        finally:
            self.connecting = False

    @rx.event
    async def disconnect_telegram(self) -> Any:
        try:
            async with self.signed_in() as (session, actor):
                await telegram.disconnect(session, actor=actor, runtime=get_runtime())
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self._show(TelegramView(configured=False))
        return rx.toast.success("Telegram disconnected")
