"""Where a deployment answers, as a table cell: a Slack workspace and conversation, or the address, and
whether the smith can write there now (a reply window)."""

from __future__ import annotations

import reflex as rx

from app.components.badges import reply_window_badge


def address_cell(row: rx.Var) -> rx.Component:
    """Per-installation channels (Slack: "T0TEAM:D0123") show the workspace's name and the conversation;
    the others their address as it is ("—" while a link waits to be opened). Channels that may write only
    within a window after the person's last message (WhatsApp) show it beneath."""
    return rx.vstack(
        rx.cond(
            row["workspace"] != "",
            rx.vstack(
                rx.text(row["workspace"], size="2", weight="medium"),
                rx.hstack(rx.text("conversation", size="1", color=rx.color("gray", 10)),
                          rx.code(row["conversation"], size="1"), align="center", spacing="1"),
                spacing="0",
            ),
            rx.code(row["address"], size="1"),
        ),
        reply_window_badge(row["window"], row["window_color"]),
        spacing="1",
    )
