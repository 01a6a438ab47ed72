"""One channel's card on Settings → Integrations, rendered from the dict IntegrationsState builds
out of the channel's declarations (app/state/integration_cards.py ``card_of``); and each kind's icon."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.components.layout import copy_button, form_error
from app.components.messaging_gate import messaging_gate
from app.state.integrations import IntegrationsState as S

KIND_ICONS = {"telegram": "send", "slack": "hash", "whatsapp": "message-circle", "email": "mail",
              "linkedin": "briefcase", "mcp": "plug"}
GRAY = rx.color("gray", 10)


def kind_icon(kind: rx.Var | str, size: int = 16) -> rx.Component:
    """The kind's icon (icons are static components, so a kind known only in the browser is matched)."""
    if isinstance(kind, str):
        return rx.icon(KIND_ICONS.get(kind, "radio-tower"), size=size)
    return rx.match(kind, *[(name, rx.icon(icon, size=size)) for name, icon in KIND_ICONS.items()],
                    rx.icon("radio-tower", size=size))


def _fact(label: Any, value: Any) -> rx.Component:
    return rx.hstack(rx.text(label, size="2", color=GRAY, width="150px", min_width="150px"),
                     rx.text(value, size="2"), align="center")


def _url_row(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(row["label"], size="2", color=GRAY, width="150px", min_width="150px"),
        rx.code(row["url"], size="1", word_break="break-all"),
        copy_button(row["url"], "Copy URL"),
        align="center", width="100%",
    )


def _handover_row(row: rx.Var) -> rx.Component:
    """A value the channel made for the admin to paste at the provider (WhatsApp's verify token)."""
    return rx.hstack(
        rx.text(row["label"], size="2", color=GRAY, width="150px", min_width="150px"),
        rx.code(row["value"], size="1", word_break="break-all", id=row["id"]),
        copy_button(row["value"], row["copy_label"]),
        align="center", width="100%",
    )


def _status(card: rx.Var) -> rx.Component:
    """What is set up and how it is going: identity, receiving mode, secrets set, errors, deliveries."""
    return rx.vstack(
        rx.cond(card["headline"] != "", rx.text(card["headline"], weight="medium"), rx.fragment()),
        _fact("Receiving by", card["mode_label"]),
        rx.foreach(card["facts"].to(list[dict[str, str]]), lambda fact: _fact(fact["label"], fact["value"])),
        _fact("Last delivery", rx.cond(card["last_delivery_at"] != "", card["last_delivery_at"], "none yet")),
        rx.cond(card["last_error"] != "",
                rx.callout(card["last_error"], icon="triangle-alert", color_scheme="red", width="100%"),
                rx.fragment()),
        # Credentials the channel renews itself could not be renewed (in the app factory's block, if it has one).
        rx.cond((card["renewal_error"] != "") & ~card["factory_block"].to(bool), _renewal_error(card), rx.fragment()),
        rx.foreach(card["steps"].to(list[str]), lambda step: rx.text("• ", step, size="1", color=GRAY)),
        spacing="2", width="100%",
    )


def _renewal_error(card: rx.Var) -> rx.Component:
    return rx.callout(card["renewal_error"], icon="triangle-alert", color_scheme="amber", width="100%",
                      id=f"{card['kind']}-renewal-error")


def _factory(card: rx.Var) -> rx.Component:
    """Dedicated apps (Slack's app factory, issue 17): whether smiths can get their own app, and how its
    configuration token is doing, in plain words; a refused renewal is a warning above them."""
    return rx.vstack(
        rx.text("Dedicated apps", size="2", weight="medium"),
        rx.cond(card["renewal_error"] != "", _renewal_error(card), rx.fragment()),
        rx.cond(
            card["factory_summary"] != "",
            rx.vstack(
                rx.hstack(rx.icon("refresh-cw", size=14, color=GRAY),
                          rx.text(card["factory_summary"], size="2", id=f"{card['kind']}-factory-summary"),
                          align="center", spacing="2"),
                rx.cond(card["factory_workspace"] != "",
                        rx.text("Each smith's own app is created in the ", card["factory_workspace"],
                                " workspace; open a smith's Deployments tab to create one.", size="1", color=GRAY),
                        rx.fragment()),
                spacing="1", width="100%",
            ),
            rx.text("To give each smith its own ", card["title"], " app (its own name, and the assistant pane), "
                    "paste an app configuration refresh token below.", size="2", color=GRAY,
                    id=f"{card['kind']}-factory-hint"),
        ),
        spacing="2", width="100%", id=f"{card['kind']}-factory",
    )


def _installations(card: rx.Var) -> rx.Component:
    """Per-installation channels (Slack): the workspaces that installed the app."""
    rows = card["installations"].to(list[dict[str, str]])
    return rx.vstack(
        rx.text("Workspaces", size="2", weight="medium"),
        rx.cond(
            rows.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                    "Workspace", "Installed by", "Installed at", "")])),
                rx.table.body(rx.foreach(rows, lambda row: rx.table.row(
                    rx.table.cell(rx.text(row["name"], size="2", title=row["external_id"])),
                    rx.table.cell(rx.code(row["installer"], size="1")),
                    rx.table.cell(rx.text(row["installed_at"], " UTC", size="2")),
                    rx.table.cell(rx.cond(row["status"] == "active", rx.fragment(),
                                          rx.badge(row["status"], color_scheme="gray"))),
                    align="center"))),
                width="100%", variant="surface", size="1",
            ),
            rx.text("No workspace has installed the app yet: open a smith's Deployments tab and use Add to ",
                    card["title"], ".", size="2", color=GRAY),
        ),
        spacing="2", width="100%",
    )


def _manifest(card: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(card["manifest_intro"], size="2"),
        rx.hstack(
            rx.text("App manifest", size="2", weight="medium"),
            rx.button(rx.icon("copy", size=14), "Copy manifest", size="1", variant="soft",
                      on_click=[rx.set_clipboard(card["manifest"]), rx.toast.info("Manifest copied")]),
            align="center",
        ),
        rx.code_block(card["manifest"], language="json", width="100%", max_height="280px", overflow="auto"),
        spacing="2", width="100%",
    )


def _provider_setup(card: rx.Var) -> rx.Component:
    """What the person gives the provider: the app manifest (Slack), the URLs, and once connected any value
    the channel made for them to paste there (WhatsApp's verify token), each with a copy button."""
    return rx.vstack(
        rx.cond(card["manifest"] != "", _manifest(card), rx.fragment()),
        rx.vstack(
            rx.text(card["urls_heading"], size="2", weight="medium"),
            rx.foreach(card["urls"].to(list[dict[str, str]]), _url_row),
            rx.foreach(card["handover"].to(list[dict[str, str]]), _handover_row),
            spacing="2", width="100%",
        ),
        spacing="4", width="100%",
    )


def _field(field: rx.Var) -> rx.Component:
    common = {"name": field["name"], "id": field["id"], "placeholder": field["placeholder"], "width": "100%"}
    return rx.vstack(
        rx.hstack(
            rx.el.label(rx.text(field["label"], size="2", weight="medium"), html_for=field["id"]),
            rx.cond(field["optional"], rx.badge("optional", color_scheme="gray", variant="soft", size="1"),
                    rx.fragment()),
            align="center", spacing="2",
        ),
        rx.cond(field["secret"],
                rx.input(type="password", auto_complete="off", **common),
                rx.input(type="text", default_value=field["value"], **common)),
        rx.text(field["help"], size="1", color=GRAY),
        spacing="1", width="100%",
    )


def _disconnect(card: rx.Var) -> rx.Component:
    """Disconnecting deletes the credentials (and installations): it always asks first."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button(rx.icon("unplug", size=14), "Disconnect", size="1", variant="soft",
                                          color_scheme="red")),
        rx.alert_dialog.content(
            rx.alert_dialog.title(card["disconnect_title"]),
            rx.alert_dialog.description(card["disconnect_text"], size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Disconnect", color_scheme="red",
                                                 on_click=S.disconnect(card["kind"]))),
                spacing="3", justify="end", padding_top="16px",
            ),
            max_width="460px",
        ),
    )


def _form(card: rx.Var) -> rx.Component:
    # The form's submit handler is one hook for every card, so it cannot name this card's kind: the kind
    # travels in the form data instead.
    return rx.form(
        rx.vstack(
            rx.el.input(type="hidden", name="kind", default_value=card["kind"]),
            rx.foreach(card["fields"].to(list[dict[str, Any]]), _field),
            form_error(card["error"]),
            rx.button(rx.cond(card["configured"], "Save", "Connect"), type="submit",
                      loading=S.connecting == card["kind"], id=card["button_id"]),
            spacing="3", width="100%",
        ),
        # Not reset on submit, so a refused value can be corrected; a saved form is reset by the state.
        on_submit=S.connect, width="100%",
    )


def channel_card(card: rx.Var) -> rx.Component:
    configured = card["configured"].to(bool)
    return rx.card(rx.vstack(
        rx.hstack(
            kind_icon(card["kind"], size=20),
            rx.heading(card["title"], size="4"),
            rx.badge(card["status"], variant="soft", color_scheme=card["status_color"]),
            rx.cond(configured & (card["mode"] != ""), rx.badge(card["mode"], variant="outline"), rx.fragment()),
            rx.spacer(),
            rx.cond(configured, _disconnect(card), rx.fragment()),
            align="center", width="100%",
        ),
        rx.cond(configured, _status(card), rx.fragment()),
        rx.cond(card["per_installation"].to(bool) & configured, _installations(card), rx.fragment()),
        rx.cond(card["factory_block"].to(bool), _factory(card), rx.fragment()),
        rx.cond(card["gate_block"].to(bool), messaging_gate(card), rx.fragment()),
        # Once connected, what was given to the provider folds away (still there to check or copy again),
        # unless there is still something to paste there and the provider has not called yet.
        rx.cond(configured,
                rx.el.details(rx.el.summary(rx.text(card["setup_title"], size="2", as_="span")),
                              rx.box(_provider_setup(card), padding_top="12px"), width="100%",
                              open=card["setup_open"].to(bool)),
                _provider_setup(card)),
        _form(card),
        spacing="4", width="100%",
    ), width="100%", id=card["card_id"])
