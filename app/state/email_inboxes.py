"""A smith's email inbox on its Deployments tab (issue 18): the dialog that has the server create one on the
connected Cloudflare domain (a routing rule to the Email Worker; active at once), and the inbox owner's
address (ID-5), changed in place on its row. Renaming (the From name) and removing are the tab's own
(``OwnAppState``, ``SmithDeploymentsState.remove``). Thin over ``app.services.deployments``: the service
checks the values and talks to Cloudflare; the console gathers them and says what went wrong, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.services import deployments
from app.services.deployments import DeploymentCreate, DeploymentUpdate, Target
from app.services.errors import DomainError
from app.state.auth import NotSignedIn, describe
from app.state.slack_apps import OwnAppState
from channels.email import EMAIL_RE

# The dialog's and the row's words for the fields a refusal names (the service says "setup.handle: …").
FIELD_LABELS = {"setup.handle": "Address", "setup.display_name": "From name", "setup.owner_email": "Owner's email",
                "display_name": "From name", "owner_email": "Owner's email"}


def inbox_body(smith_id: str, form: Mapping[str, Any]) -> DeploymentCreate:
    """What the dialog asks the service for: an inbox ``handle@<domain>`` for the smith. A blank From name
    (the smith's name then) and a blank owner are left out."""
    setup: dict[str, Any] = {"mode": "provision", "handle": str(form.get("handle") or "").strip().lower()}
    for name in ("display_name", "owner_email"):
        value = str(form.get(name) or "").strip()
        if value:
            setup[name] = value
    return DeploymentCreate(target=Target(type="smith", id=smith_id), kind="email", setup=setup)


def in_words(exc: Exception) -> str:
    """A refusal as the person reads it: the field by its label in the form ("Address: the part before the
    @: …"), never the API's name for it; anything else in the service's own words."""
    message = describe(exc)
    field = getattr(exc, "field", None) or ""
    if isinstance(exc, ValidationError):
        loc = exc.errors()[0].get("loc") or ()
        field = ".".join(str(part) for part in loc)
    label = FIELD_LABELS.get(field)
    if label is None:
        return message
    message = message.removeprefix(f"{field}: ").removeprefix(f"{field} ")
    return f"{label}: {message}"


def owner_email_problem(value: str) -> str:
    """Why an owner's address typed on a row cannot be saved; "" when it can (blank clears the owner)."""
    value = value.strip()
    return "" if not value or EMAIL_RE.match(value) else "Owner's email: one address, e.g. dana@example.com"


class EmailInboxState(OwnAppState):
    """The tab's email parts: a substate of the tab's state, so a new inbox shows in its list at once."""

    dialog_open: bool = False
    domain: str = ""  # the connected domain, shown after the handle ("@acme.example")
    form_error: str = ""
    creating: bool = False
    owner_editing_id: str = ""  # the row whose owner's email is being edited
    owner_error: str = ""

    @rx.event
    def open_dialog(self) -> None:
        offer = next((offer for offer in self.offers if offer["kind"] == "email"), {})
        self.domain, self.form_error = offer.get("domain", ""), ""
        self.dialog_open = True

    @rx.event
    def set_dialog_open(self, value: bool) -> None:
        self.dialog_open = value

    @rx.event
    async def create_inbox(self, form: dict[str, Any]) -> Any:
        """The dialog's Create: Cloudflare routes the new address to the Worker; the row shows it."""
        self.form_error = ""
        if not str(form.get("handle") or "").strip():
            self.form_error = "Address: type the part before the @, e.g. pa."
            return
        self.creating = True
        yield
        try:
            body = inbox_body(self._smith_id(), form)
            async with self.signed_in() as (session, actor):
                deployment, _ = await deployments.create_deployment(session, actor=actor, body=body)
                address = deployment.address or ""
                await self._refresh(session, actor)
        except NotSignedIn:
            yield rx.redirect("/login")
            return
        except (ValidationError, DomainError) as exc:
            self.form_error = in_words(exc)
        else:
            self.dialog_open = False
            yield rx.toast.success(f"Inbox {address} created: mail to it now reaches this smith")
        finally:
            self.creating = False

    @rx.event
    def start_owner_edit(self, deployment_id: str) -> None:
        self.owner_editing_id, self.owner_error = deployment_id, ""

    @rx.event
    def cancel_owner_edit(self) -> None:
        self.owner_editing_id, self.owner_error = "", ""

    @rx.event
    async def save_owner_email(self, form: dict[str, Any]) -> Any:
        """The row's Save: who owns the inbox (replies from them, DMARC-verified, may approve); blank clears."""
        value = str(form.get("owner_email") or "").strip().lower()
        self.owner_error = owner_email_problem(value)
        if self.owner_error:
            return None
        try:
            self.owner_error = await self._update(self.owner_editing_id, DeploymentUpdate(owner_email=value))
        except NotSignedIn:
            return rx.redirect("/login")
        except ValidationError as exc:
            self.owner_error = in_words(exc)
        if self.owner_error:
            return None
        self.owner_editing_id = ""
        return rx.toast.success(f"Owner set to {value}: their verified replies may approve actions" if value
                                else "Owner cleared: no reply to this inbox counts as the owner's any more")
