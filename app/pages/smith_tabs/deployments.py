"""A smith's Deployments tab (CON-2): one-time links (a Telegram deep link, an Add-to-Slack install link, a
dedicated Slack app's install link) with a copy button and a QR code, email inboxes, MCP endpoints, and the
smith's bindings; a smith's own app (a dedicated Slack app, an inbox) is renamed in place on its row."""

from __future__ import annotations

import reflex as rx

from app.components.badges import status_badge
from app.components.caller_tokens import caller_tokens_button, caller_tokens_dialog
from app.components.channel_card import kind_icon
from app.components.deployment_address import address_cell
from app.components.email_inbox_form import email_inbox_dialog, inbox_offer, owner_email_cell
from app.components.layout import confirm_delete, copy_button, form_error
from app.components.slack_app_form import app_offer, remove_with_app, slack_app_dialog
from app.state.deployment_rows import LINK_DAYS
from app.state.deployments import SmithDeploymentsState as S
from app.state.slack_apps import OwnAppState as O

GRAY = rx.color("gray", 11)


def _link_box(heading: rx.Component, alt: str, code_id: str, explanation: rx.Component,
              open_button: rx.Component) -> rx.Component:
    return rx.card(rx.hstack(
        rx.image(src=S.link_qr, width="168px", height="168px", alt=alt),
        rx.vstack(
            heading,
            explanation,
            rx.hstack(rx.code(S.link, id=code_id, size="2", word_break="break-all"),
                      copy_button(S.link, "Copy link"), align="center"),
            rx.link(open_button, href=S.link, is_external=True),
            spacing="2",
        ),
        spacing="5", align="center",
    ), width="100%")


def _deep_link_card() -> rx.Component:
    """start_token: the person opens the link in the messenger, which binds their account (on WhatsApp, once
    they send the message it fills in)."""
    return _link_box(
        rx.heading("Send this link to the person", size="3"), "QR code of the deep link", "deep-link",
        rx.text(S.link_text, " It works once and expires on ", S.link_expires, " UTC.", size="2", color=GRAY,
                id="deep-link-text"),
        rx.button(rx.icon("external-link", size=14), "Open in ", S.link_name, variant="soft"),
    )


def _install_link_card() -> rx.Component:
    """oauth_install: the link installs the app into a workspace and binds the installer's DM; provision: the
    same, with the smith's own app."""
    return _link_box(
        rx.heading("Add this smith to ", S.link_name, size="3"), "QR code of the install link", "install-link",
        rx.text("Opening it installs ",
                rx.cond(S.link_app != "", rx.fragment("“", S.link_app, "”, this smith's own app,"), "the app"),
                " into a ", S.link_name, " workspace (the person chooses which) and "
                "connects this smith to the installer's direct messages. It works once and expires in "
                f"{LINK_DAYS} days",
                rx.cond(S.link_expires != "", rx.fragment(" (", S.link_expires, " UTC)"), rx.fragment()), ".",
                size="2", color=GRAY, id="install-link-text"),
        rx.button(rx.icon("external-link", size=14), "Open", variant="soft", id="open-install-link"),
    )


def _link_card() -> rx.Component:
    return rx.cond(
        S.link != "",
        rx.cond((S.link_mode == "oauth_install") | (S.link_mode == "provision"), _install_link_card(),
                _deep_link_card()),
        rx.fragment(),
    )


def _offer(offer: rx.Var) -> rx.Component:
    """A channel whose deployments start from a one-time link: its button, or where to connect it first."""
    return rx.cond(
        offer["connected"] != "",
        rx.vstack(
            rx.hstack(
                rx.button(kind_icon(offer["kind"], size=14), offer["label"], on_click=S.create_link(offer["kind"]),
                          loading=S.busy, id=offer["button_id"]),
                rx.text(offer["via"], size="2", color=GRAY),
                align="center",
            ),
            app_offer(offer),  # a dedicated app of its own (Slack's app factory)
            spacing="2",
        ),
        rx.callout(rx.hstack(rx.text("Connect ", offer["name"], " first."),
                             rx.link("Settings → Integrations", href="/settings/integrations")),
                   icon="info", width="100%", id=offer["notice_id"]),
    )


def own_app_name(row: rx.Var) -> rx.Component:
    """A smith's own app's name on its row (a dedicated Slack app's; an inbox's From name); the pencil turns
    it into an input with Save and Cancel."""
    return rx.cond(
        O.renaming_id == row["id"],
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.input(name="display_name", default_value=row["name"], max_length=row["name_max"].to(int),
                             size="1", auto_focus=True, aria_label=row["rename_label"], id=row["rename_id"]),
                    rx.button("Save", size="1", type="submit", id=row["rename_id"].to(str) + "-save"),
                    rx.button("Cancel", size="1", type="button", variant="soft", color_scheme="gray",
                              on_click=O.cancel_rename),
                    align="center", spacing="1",
                ),
                form_error(O.rename_error),
                spacing="1",
            ),
            on_submit=O.save_rename,
            reset_on_submit=False,
        ),
        rx.hstack(
            rx.cond(row["name_label"] != "", rx.text(row["name_label"], size="1", color=GRAY), rx.fragment()),
            rx.text(row["name"], size="2", weight="medium", class_name="own-app-name"),
            rx.icon_button(rx.icon("pencil", size=12), size="1", variant="ghost", title=row["rename_label"],
                           aria_label=row["rename_label"], on_click=O.start_rename(row["id"])),
            align="center", spacing="1",
        ),
    )


def _address(row: rx.Var) -> rx.Component:
    """An MCP endpoint's URL, or where the deployment answers; an inbox's address can be copied."""
    return rx.cond(
        row["endpoint_url"] != "",
        rx.hstack(rx.code(row["endpoint_url"], size="1", word_break="break-all"),
                  copy_button(row["endpoint_url"], "Copy URL"), align="center"),
        rx.cond(row["kind"] == "email",
                rx.hstack(address_cell(row), copy_button(row["address"], "Copy address"), align="center"),
                address_cell(row)),
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(
            rx.text(row["kind"], size="2"),
            rx.cond(row["renamable"] != "", own_app_name(row), rx.fragment()),
            spacing="1")),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(_address(row)),
        rx.table.cell(rx.cond(row["kind"] == "email", owner_email_cell(row), rx.text(row["owner"], size="2"))),
        rx.table.cell(rx.hstack(
            rx.cond(row["status"] == "pending",
                    rx.button(rx.icon("refresh-cw", size=14), "New link", size="1", variant="soft",
                              on_click=S.new_link(row["id"])),
                    rx.fragment()),
            rx.cond(row["slack_app_id"] != "", remove_with_app(row),
                    confirm_delete("Remove this deployment?", row["remove_text"], S.remove(row["id"]), "Remove")),
            spacing="2")),
        align="center",
    )


def _config_block(title: str, code: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(title, size="2", weight="medium"), copy_button(code, "Copy configuration"),
                  align="center"),
        rx.code_block(code, language="json", width="100%"),
        spacing="1", width="100%",
    )


def _mcp_card(row: rx.Var) -> rx.Component:
    """MCP-1: the endpoint URL and client configurations to paste, with the token as a placeholder."""
    return rx.cond(
        row["kind"] == "mcp",
        rx.card(rx.vstack(
            rx.hstack(rx.heading("MCP endpoint", size="3"), rx.spacer(), caller_tokens_button(row["id"]),
                      align="center", width="100%"),
            rx.hstack(rx.code(row["endpoint_url"], size="2", word_break="break-all"),
                      copy_button(row["endpoint_url"], "Copy URL"), align="center"),
            rx.text("Any MCP client can call this smith's ask tool and read its memory over Streamable HTTP. "
                    "Replace <YOUR_TOKEN> with a caller token (Caller tokens: one per client, good for this "
                    "endpoint only), or this smith's own token.", size="2", color=rx.color("gray", 11)),
            _config_block("Streamable HTTP clients (Claude Code, Cursor, VS Code …)", row["client_config"]),
            _config_block("Claude Desktop (claude_desktop_config.json, through mcp-remote)", row["desktop_config"]),
            spacing="3", width="100%",
        ), width="100%"),
        rx.fragment(),
    )


def deployments_tab() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.button(rx.icon("plug", size=14), "Create MCP endpoint", on_click=S.create_mcp_endpoint,
                      loading=S.busy, variant="soft", id="create-mcp-endpoint"),
            rx.text("for MCP clients such as Claude, IDE agents or other frameworks", size="2",
                    color=rx.color("gray", 10)),
            align="center",
        ),
        rx.foreach(S.offers, lambda offer: rx.cond(offer["mode"] == "provision", inbox_offer(offer), _offer(offer))),
        _link_card(),
        rx.cond(
            S.items.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                    "Kind", "Status", "Address", "Owner", "")])),
                rx.table.body(rx.foreach(S.items, _row)),
                width="100%", variant="surface",
            ),
            rx.text("Not deployed anywhere yet.", size="2", color=rx.color("gray", 10)),
        ),
        rx.foreach(S.items, _mcp_card),
        caller_tokens_dialog(),
        slack_app_dialog(),
        email_inbox_dialog(),
        spacing="4", width="100%",
    )
