"""Where a deployment answers, as a table cell: a Slack workspace and conversation, or the address."""

from __future__ import annotations

import reflex as rx


def address_cell(row: rx.Var) -> rx.Component:
    """Per-installation channels (Slack: "T0TEAM:D0123") show the workspace's name and the conversation;
    the others their address as it is ("—" while a link waits to be opened)."""
    return rx.cond(
        row["workspace"] != "",
        rx.vstack(
            rx.text(row["workspace"], size="2", weight="medium"),
            rx.hstack(rx.text("conversation", size="1", color=rx.color("gray", 10)),
                      rx.code(row["conversation"], size="1"), align="center", spacing="1"),
            spacing="0",
        ),
        rx.code(row["address"], size="1"),
    )
