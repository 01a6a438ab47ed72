"""A smith's Deployments tab (CON-2): Telegram deep links with a copy button and a QR code."""

from __future__ import annotations

import reflex as rx

from app.components.badges import status_badge
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
        rx.table.cell(rx.code(row["address"], size="1")),
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


def deployments_tab() -> rx.Component:
    return rx.vstack(
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
        spacing="4", width="100%",
    )
