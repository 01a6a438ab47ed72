"""An MCP deployment's caller tokens (issue 13): one dialog, thin over ``app.services.mcp_tokens``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import mcp_tokens
from app.services.actors import Actor
from app.services.errors import DomainError
from app.services.mcp_tokens import CallerTokenCreate
from app.services.pagination import MAX_LIMIT
from app.state.auth import AuthState, NotSignedIn, describe


def _minute(when: datetime | None) -> str:
    return when.isoformat()[:16].replace("T", " ") if when else ""


class CallerTokensState(AuthState):
    deployment_id: str = ""
    dialog_open: bool = False
    tokens: list[dict[str, str]] = []
    minted: str = ""  # the new token's value: shown until the dialog closes, never stored
    form_error: str = ""

    async def _refresh(self, session: AsyncSession, actor: Actor) -> None:
        page = await mcp_tokens.list_caller_tokens(session, actor=actor, deployment_id=self.deployment_id,
                                                   limit=MAX_LIMIT)
        self.tokens = [{"id": t.id, "subject": t.subject, "name": t.name, "hint": t.hint,
                        "created_at": _minute(t.created_at), "last_used_at": _minute(t.last_used_at) or "never"}
                       for t in page.items]

    @rx.event
    async def open_for(self, deployment_id: str) -> Any:
        self.deployment_id, self.minted, self.form_error, self.tokens = deployment_id, "", "", []
        try:
            async with self.signed_in() as (session, actor):
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self.dialog_open = True
        return None

    @rx.event
    def set_dialog_open(self, value: bool) -> None:
        self.dialog_open = value
        if not value:
            self.minted = ""  # shown once: gone with the dialog

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.form_error, self.minted = "", ""
        try:
            body = CallerTokenCreate(subject=str(form.get("subject", "")), name=str(form.get("name", "")))
            async with self.signed_in() as (session, actor):
                minted = await mcp_tokens.create_caller_token(session, actor=actor, deployment_id=self.deployment_id,
                                                              body=body)
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except (DomainError, ValidationError) as exc:
            self.form_error = describe(exc)
            return None
        self.minted = minted.token
        return rx.toast.success("Caller token created: copy it now, it is shown only once")

    async def _reload(self) -> None:
        async with self.signed_in() as (session, actor):
            await self._refresh(session, actor)

    @rx.event
    async def revoke(self, token_id: str) -> Any:
        return await self._change(
            lambda session, actor: mcp_tokens.revoke_caller_token(session, actor=actor,
                                                                  deployment_id=self.deployment_id, token_id=token_id),
            "Caller token revoked", self._reload)
