"""Events: the project's feed, newest first."""

from __future__ import annotations

import reflex as rx

from app.components.layout import empty_state, load_more, page
from app.state.events import EventsState

TYPES = ["all", "agent.", "smith.", "token.", "memory.", "integration.", "deployment.",
         "run.", "message.completed", "approval.required"]


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["created_at"], size="2", white_space="nowrap")),
        rx.table.cell(rx.badge(row["type"], variant="soft")),
        rx.table.cell(rx.code(row["data"], size="1", white_space="pre-wrap",
                              word_break="break-all")),
    )


def events_page() -> rx.Component:
    return page(
        "Events",
        "What happened in this project, newest first.",
        rx.hstack(rx.text("Type", size="2"),
                  rx.select(TYPES, default_value="all", on_change=EventsState.filter_type),
                  align="center", padding_bottom="12px"),
        rx.cond(
            EventsState.events.length() > 0,
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(
                        *[rx.table.column_header_cell(h) for h in ("When (UTC)", "Type", "Data")]
                    )),
                    rx.table.body(rx.foreach(EventsState.events, _row)),
                    width="100%", variant="surface",
                ),
                load_more(EventsState.next_cursor, EventsState.load_more),
                width="100%",
            ),
            rx.cond(EventsState.loaded,
                    empty_state("list", "No events", "Events appear as you create agents and "
                                "smiths, deployments bind, and runs complete."),
                    rx.center(rx.spinner(), padding="40px")),
        ),
    )
