"""A smith's own app on its Deployments tab: renaming it in place on its row, whatever the kind (a dedicated
Slack app, an email inbox's From name: ``OwnAppState``); and for Slack (issue 17) the dialog that has the
server mint one from a manifest, removing it with or without the app, and how the app factory's
configuration token reads on Settings → Integrations. Thin over ``app.services.deployments``: the service
checks the values and talks to the provider, the console only gathers them and shows the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.services import deployments
from app.services.deployments import DeploymentCreate, DeploymentUpdate, Target
from app.services.errors import DomainError
from app.state.auth import NotSignedIn, describe
from app.state.deployment_rows import OWN_APPS, from_now
from app.state.deployments import SmithDeploymentsState
from channels.slack_apps import MAX_GREETING, MAX_NAME, MAX_PROMPT_TITLE, MAX_PROMPTS

# Slack's limits, for the dialog's inputs and counter (the service checks them again).
APP_NAME_MAX, PROMPTS_MAX, PROMPT_MAX, GREETING_MAX = MAX_NAME, MAX_PROMPTS, MAX_PROMPT_TITLE, MAX_GREETING
DEFAULT_GREETING = "Hi! How can I help?"
# The public details of the app factory, which its own block on the Slack card shows (not as plain facts).
FACTORY_DETAILS = frozenset({"config_token_expires_at", "config_rotated_at", "factory_team_id", "factory_user_id"})


def _moment(iso: Any) -> datetime | None:
    """A stored ISO time (always UTC here; a time without a zone is taken as UTC), or None."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        found = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _clock(at: datetime, now: datetime) -> str:
    """"14:13 UTC" on the day of ``now``, "2026-12-03 14:13 UTC" on another."""
    at = at.astimezone(UTC)
    return f"{at:%H:%M} UTC" if at.date() == now.astimezone(UTC).date() else f"{at:%Y-%m-%d %H:%M} UTC"


def factory_summary(public: Mapping[str, Any], now: datetime, *, failing: bool = False) -> str:
    """The app factory's configuration token in plain words: "Token renews automatically; expires 02:13 UTC
    (in 11 h), last renewed 14:13 UTC". When its renewal is ``failing`` (the card shows why) it only says
    when the token expires; "" when the factory has no token."""
    expires = _moment(public.get("config_token_expires_at"))
    if expires is None:
        return ""
    if expires <= now:
        words = f"Token expired at {_clock(expires, now)}"
        words += "" if failing else "; it is being renewed"
    else:
        words = f"expires {expires.astimezone(UTC):%H:%M} UTC ({from_now(expires - now)})"
        words = f"Token {words}" if failing else f"Token renews automatically; {words}"
    rotated = _moment(public.get("config_rotated_at"))
    return f"{words}, last renewed {_clock(rotated, now)}" if rotated else words


def provision_body(smith_id: str, name: str, *, assistant: bool, greeting: str = "",
                   prompts: Sequence[str] = ()) -> DeploymentCreate:
    """What the dialog asks the service for: a Slack deployment whose app the server creates from a manifest.
    Blank prompts (and a blank greeting) are left out; without the assistant pane, both are."""
    metadata: dict[str, Any] = {"assistant": assistant}
    if assistant:
        if greeting.strip():
            metadata["greeting"] = greeting.strip()
        chosen = [prompt.strip() for prompt in prompts if prompt.strip()]
        if chosen:
            metadata["suggested_prompts"] = chosen
    return DeploymentCreate(target=Target(type="smith", id=smith_id), kind="slack",
                            setup={"mode": "provision", "display_name": name.strip()}, provider_metadata=metadata)


def prompts_of(form: Mapping[str, Any]) -> list[str]:
    """The suggested prompts the dialog's inputs (``prompt_1`` … ``prompt_4``) hold, in order."""
    return [str(form.get(f"prompt_{number}") or "") for number in range(1, PROMPTS_MAX + 1)]


class OwnAppState(SmithDeploymentsState):
    """Renaming a smith's own app in place on its row (REN-1): the server renames a dedicated Slack app at
    Slack, or changes the From name an email inbox writes with. A substate of the tab's state, so the list
    refreshes; the channels' own parts (Slack's dialog, the email inbox's) are substates of this one."""

    renaming_id: str = ""  # the row whose name is being edited
    rename_error: str = ""

    async def _update(self, deployment_id: str, body: DeploymentUpdate) -> str:
        """Change one of the tab's deployments and refresh the list: "" when done, else why not in words.
        Raises NotSignedIn for a dead session."""
        try:
            async with self.signed_in() as (session, actor):
                await deployments.update_deployment(session, actor=actor, deployment_id=deployment_id, body=body)
                await self._refresh(session, actor)
        except DomainError as exc:
            return describe(exc)
        return ""

    @rx.event
    def start_rename(self, deployment_id: str) -> None:
        self.renaming_id, self.rename_error = deployment_id, ""

    @rx.event
    def cancel_rename(self) -> None:
        self.renaming_id, self.rename_error = "", ""

    @rx.event
    async def save_rename(self, form: dict[str, Any]) -> Any:
        """The row's Save; the toast says what changed (for an inbox: the name its mail goes out as)."""
        name = str(form.get("display_name") or "").strip()
        row = self._row(self.renaming_id)
        if not name:
            self.rename_error = "Give it a name: people see it."
            return None
        try:
            self.rename_error = await self._update(self.renaming_id, DeploymentUpdate(display_name=name))
        except NotSignedIn:
            return rx.redirect("/login")
        except ValidationError as exc:
            self.rename_error = describe(exc)
        if self.rename_error:
            return None
        self.renaming_id = ""
        words = OWN_APPS.get(row.get("kind", ""))
        return rx.toast.success(words.renamed.format(name=name, address=row.get("address", "")) if words
                                else f"Renamed to “{name}”")


class SlackAppState(OwnAppState):
    """The Deployments tab's dedicated-app parts. A substate of the tab's state, so an app's install link
    lands in the tab's own link card (shown once, like every one-time link) and the list refreshes."""

    dialog_open: bool = False
    app_name: str = ""  # controlled, for the live counter
    assistant: bool = True
    form_error: str = ""
    creating: bool = False
    delete_app: bool = True  # the removal dialog's "Also delete the Slack app"

    @rx.event
    def open_dialog(self) -> None:
        self.app_name, self.assistant, self.form_error = "", True, ""
        self.dialog_open = True

    @rx.event
    def set_dialog_open(self, value: bool) -> None:
        self.dialog_open = value

    @rx.event
    def set_app_name(self, value: str) -> None:
        self.app_name = value

    @rx.event
    def set_assistant(self, value: bool) -> None:
        self.assistant = value

    @rx.event
    async def create_app(self, form: dict[str, Any]) -> Any:
        """The dialog's Create: the server makes the app from its manifest, then the install link shows."""
        self.form_error = ""
        name = str(form.get("display_name") or self.app_name).strip()
        if not name:
            self.form_error = "Give the app a name: people see it in Slack."
            return
        self.creating = True
        yield
        try:
            body = provision_body(self._smith_id(), name, assistant=self.assistant,
                                  greeting=str(form.get("greeting") or ""), prompts=prompts_of(form))
            async with self.signed_in() as (session, actor):
                deployment, link = await deployments.create_deployment(session, actor=actor, body=body)
                if link is not None:
                    self._show_link(deployment, link)
                await self._refresh(session, actor)
        except NotSignedIn:
            yield rx.redirect("/login")
            return
        except (ValidationError, DomainError) as exc:
            self.form_error = describe(exc)
        else:
            self.dialog_open = False
            yield rx.toast.success(f"Slack app “{name}” created: open the install link, or send it to whoever "
                                   "installs it")
        finally:
            self.creating = False

    @rx.event
    def ask_remove(self) -> None:
        self.delete_app = True  # each time the dialog opens: deleting the app is the usual wish

    @rx.event
    def set_delete_app(self, value: bool) -> None:
        self.delete_app = value

    @rx.event
    async def remove_with_app(self, deployment_id: str) -> Any:
        """Remove a provisioned deployment; its Slack app goes too unless the person unticked the box."""
        keep_app = not self.delete_app
        try:
            async with self.signed_in() as (session, actor):
                await deployments.delete_deployment(session, actor=actor, deployment_id=deployment_id,
                                                    keep_app=keep_app)
                await self._refresh(session, actor)
        except NotSignedIn:
            return rx.redirect("/login")
        except DomainError as exc:
            return rx.toast.error(describe(exc))
        self._clear_link()
        return rx.toast.success("Deployment removed; its Slack app is kept" if keep_app
                                else "Deployment and its Slack app removed")
