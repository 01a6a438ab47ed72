"""A smith's page: what it is, where it is deployed, its schedules and its memory."""

from __future__ import annotations

import reflex as rx

from app.components.layout import confirm_delete, copy_button, empty_state, page
from app.pages.smith_tabs.deployments import deployments_tab
from app.pages.smith_tabs.schedules import schedules_tab
from app.state.smith_detail import SmithDetailState


def _memory_tab() -> rx.Component:
    return rx.cond(
        SmithDetailState.memory_entries.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in ("Key", "Value", "Updated", "")])),
            rx.table.body(rx.foreach(SmithDetailState.memory_entries, lambda e: rx.table.row(
                rx.table.cell(rx.code(e["key"])),
                rx.table.cell(rx.text(e["value"], size="2", white_space="pre-wrap")),
                rx.table.cell(rx.text(e["updated_at"].to(str)[:16], size="2", white_space="nowrap")),
                rx.table.cell(confirm_delete("Forget this entry?", "The smith will no longer remember it.",
                                             SmithDetailState.delete_memory(e["key"]), "Forget")),
            ))),
            width="100%", variant="surface",
        ),
        empty_state("database", "Nothing remembered yet",
                    "Memory entries appear when the smith remembers something, or through the API."),
    )


def smith_detail_page() -> rx.Component:
    smith = SmithDetailState.smith
    return page(
        "Smith",
        "A persistent instance of an agent: its deployments, schedules and memory.",
        rx.cond(
            SmithDetailState.not_found,
            empty_state("bot", "No such smith", "It may have been deleted.",
                        rx.link(rx.button("Back to Smiths"), href="/smiths")),
            rx.vstack(
                rx.card(rx.hstack(
                    rx.vstack(rx.heading(smith["name"], size="5"),
                              rx.hstack(rx.code(smith["id"], size="1"), copy_button(smith["id"]), spacing="1"),
                              spacing="1"),
                    rx.spacer(),
                    rx.vstack(rx.text("Agent", size="1", color=rx.color("gray", 10)),
                              rx.link(smith["agent_name"], href="/agents", size="2"), spacing="0"),
                    rx.vstack(rx.text("Created", size="1", color=rx.color("gray", 10)),
                              rx.text(smith["created_at"], size="2"), spacing="0"),
                    rx.link(rx.button(rx.icon("play", size=14), "Runs", variant="soft"),
                            href="/runs?smith_id=" + smith["id"]),
                    align="center", spacing="5", width="100%",
                ), width="100%"),
                rx.tabs.root(
                    rx.tabs.list(rx.tabs.trigger("Deployments", value="deployments"),
                                 rx.tabs.trigger("Schedules", value="schedules"),
                                 rx.tabs.trigger("Memory", value="memory")),
                    rx.tabs.content(rx.box(deployments_tab(), padding_top="16px"), value="deployments"),
                    rx.tabs.content(rx.box(schedules_tab(), padding_top="16px"), value="schedules"),
                    rx.tabs.content(rx.box(_memory_tab(), padding_top="16px"), value="memory"),
                    default_value="deployments", width="100%",
                ),
                spacing="4", width="100%",
            ),
        ),
    )
