"""A smith's Deployments tab (CON-2): Telegram deep links with a copy button and a QR code."""

from __future__ import annotations

import reflex as rx

from app.components.badges import status_badge
from app.components.caller_tokens import caller_tokens_button, caller_tokens_dialog
from app.components.layout import confirm_delete, copy_button
from app.state.deployments import SmithDeploymentsState as S


def _link_card() -> rx.Component:
    return rx.cond(
        S.link != "",
        rx.card(rx.hstack(
            rx.image(src=S.link_qr, width="168px", height="168px", alt="QR code of the deep link"),
            rx.vstack(
                rx.heading("Send this link to the person", size="3"),
                rx.text("Opening it in Telegram binds their account to this smith. It works once and expires "
                        "on ", S.link_expires, " UTC.", size="2", color=rx.color("gray", 11)),
                rx.hstack(rx.code(S.link, id="deep-link", size="2", word_break="break-all"),
                          copy_button(S.link, "Copy link"), align="center"),
                rx.link(rx.button(rx.icon("external-link", size=14), "Open in Telegram", variant="soft"),
                        href=S.link, is_external=True),
                spacing="2",
            ),
            spacing="5", align="center",
        ), width="100%"),
        rx.fragment(),
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["kind"], size="2")),
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(rx.cond(
            row["endpoint_url"] != "",
            rx.hstack(rx.code(row["endpoint_url"], size="1", word_break="break-all"),
                      copy_button(row["endpoint_url"], "Copy URL"), align="center"),
            rx.code(row["address"], size="1"),
        )),
        rx.table.cell(rx.text(row["owner"], size="2")),
        rx.table.cell(rx.hstack(
            rx.cond(row["status"] == "pending",
                    rx.button(rx.icon("refresh-cw", size=14), "New link", size="1", variant="soft",
                              on_click=S.new_link(row["id"])),
                    rx.fragment()),
            confirm_delete("Remove this deployment?", "The smith stops answering on this surface.",
                           S.remove(row["id"]), "Remove"),
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
        rx.cond(
            S.telegram_connected,
            rx.hstack(
                rx.button(rx.icon("send", size=14), "Create Telegram deep link", on_click=S.create_telegram_link,
                          loading=S.busy, id="create-telegram-link"),
                rx.text("via @", S.bot_username, size="2", color=rx.color("gray", 10)),
                align="center",
            ),
            rx.callout(rx.hstack(rx.text("Connect a Telegram bot first."),
                                 rx.link("Settings → Integrations", href="/settings/integrations")),
                       icon="info", width="100%"),
        ),
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
        spacing="4", width="100%",
    )
