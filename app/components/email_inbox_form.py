"""A smith's email inbox on its Deployments tab (issue 18): the button (or where to connect email first), the
dialog that creates the inbox on the connected domain, and the owner's address on its row, changed in place."""

from __future__ import annotations

import reflex as rx

from app.components.layout import form_error
from app.state.email_inboxes import EmailInboxState as E
from app.state.smith_detail import SmithDetailState

GRAY = rx.color("gray", 11)
OWNER_HELP = ("Replies from this address, DMARC-verified, count as the owner: they may approve actions. A run "
              "with nobody to answer (a schedule's) writes to it.")


def inbox_offer(offer: rx.Var) -> rx.Component:
    """An email inbox of the smith's own once email is connected; until then, where to connect it."""
    return rx.cond(
        offer["connected"] != "",
        rx.hstack(
            rx.button(rx.icon("mail", size=14), offer["label"], on_click=E.open_dialog, id=offer["button_id"]),
            rx.text(offer["via"], ": mail to it reaches this smith, and it answers from it", size="2", color=GRAY),
            align="center",
        ),
        rx.callout(rx.hstack(rx.text("To give this smith an email inbox, connect your Cloudflare domain in"),
                             rx.link("Settings → Integrations → ", offer["name"], href="/settings/integrations")),
                   icon="info", width="100%", id=offer["notice_id"]),
    )


def _label(text: str, html_for: str, optional: bool = False) -> rx.Component:
    return rx.hstack(
        rx.el.label(rx.text(text, size="2", weight="medium"), html_for=html_for),
        rx.badge("optional", color_scheme="gray", variant="soft", size="1") if optional else rx.fragment(),
        align="center", spacing="2",
    )


def email_inbox_dialog() -> rx.Component:
    """"Create email inbox": the address (handle@domain), the From name, and the owner's address."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("An email inbox for this smith"),
            rx.dialog.description(
                "Cloudflare routes mail for this address to the smith, which answers from it.", size="2"),
            rx.form(
                rx.vstack(
                    _label("Address", "email-inbox-handle"),
                    rx.hstack(
                        rx.input(name="handle", id="email-inbox-handle", placeholder="pa", max_length=64,
                                 auto_focus=True, width="100%"),
                        rx.text("@", E.domain, size="2", weight="medium", white_space="nowrap",
                                id="email-inbox-domain"),
                        align="center", width="100%",
                    ),
                    rx.text("Letters, digits, dots, dashes, _ and +.", size="1", color=GRAY),
                    rx.box(_label("From name", "email-inbox-name", optional=True), padding_top="6px"),
                    rx.input(name="display_name", id="email-inbox-name", max_length=100, width="100%",
                             placeholder=SmithDetailState.smith["name"]),
                    rx.text("The name people see on the smith's mail (the smith's name if left blank).", size="1",
                            color=GRAY),
                    rx.box(_label("Owner's email", "email-inbox-owner", optional=True), padding_top="6px"),
                    rx.input(name="owner_email", id="email-inbox-owner", max_length=320,
                             placeholder="dana@example.com", width="100%"),
                    rx.text(OWNER_HELP, size="1", color=GRAY),
                    form_error(E.form_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        rx.button("Create inbox", type="submit", loading=E.creating, id="email-inbox-create"),
                        justify="end", width="100%", spacing="3", padding_top="8px",
                    ),
                    spacing="2", width="100%", padding_top="12px",
                ),
                on_submit=E.create_inbox,
                reset_on_submit=False,
            ),
            max_width="520px",
        ),
        open=E.dialog_open,
        on_open_change=E.set_dialog_open,
    )


def owner_email_cell(row: rx.Var) -> rx.Component:
    """An inbox's owner (ID-5) on its row; the pencil turns it into an input with Save and Cancel."""
    return rx.cond(
        E.owner_editing_id == row["id"],
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.input(name="owner_email", default_value=row["owner_email"], max_length=320,
                             size="1", auto_focus=True, placeholder="none", aria_label="Owner's email",
                             id="email-owner"),
                    rx.button("Save", size="1", type="submit", id="email-owner-save"),
                    rx.button("Cancel", size="1", type="button", variant="soft", color_scheme="gray",
                              on_click=E.cancel_owner_edit),
                    align="center", spacing="1",
                ),
                rx.text("Blank: no owner.", size="1", color=GRAY),
                form_error(E.owner_error),
                spacing="1",
            ),
            on_submit=E.save_owner_email,
            reset_on_submit=False,
        ),
        rx.hstack(
            rx.cond(row["owner_email"] != "", rx.text(row["owner_email"], size="2", class_name="email-owner"),
                    rx.text("no owner", size="2", color=GRAY)),
            rx.icon_button(rx.icon("pencil", size=12), size="1", variant="ghost", title=OWNER_HELP,
                           aria_label="Change the owner's email", on_click=E.start_owner_edit(row["id"])),
            align="center", spacing="1",
        ),
    )
