"""Agents: what a smith is an instance of (instructions, model, approval rules)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import confirm_delete, copy_button, empty_state, form_error, load_more, page
from app.state.agents import PROVIDERS, AgentsState


def _dialog() -> rx.Component:
    draft = AgentsState.draft
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(AgentsState.editing_id != "", "Edit agent", "New agent")),
            rx.form(
                rx.vstack(
                    rx.text("Name", size="2", weight="medium"),
                    rx.input(name="name", id="agent-name", default_value=draft["name"],
                             placeholder="Personal assistant", width="100%"),
                    rx.text("Instructions", size="2", weight="medium"),
                    rx.text_area(name="instructions", default_value=draft["instructions"],
                                 placeholder="You are a concise, friendly assistant…",
                                 rows="5", width="100%"),
                    rx.hstack(
                        rx.vstack(
                            rx.text("Model provider", size="2", weight="medium"),
                            rx.select(PROVIDERS, name="provider", default_value=draft["provider"]),
                        ),
                        rx.vstack(
                            rx.text("Model name", size="2", weight="medium"),
                            rx.input(name="model_name", default_value=draft["model_name"],
                                     placeholder="(server default)"),
                        ),
                        spacing="4",
                    ),
                    rx.text("Tools that need approval", size="2", weight="medium"),
                    rx.input(name="approval_tools", default_value=draft["approval_tools"],
                             placeholder="telegram_send_message, email_send", width="100%"),
                    rx.text("Comma-separated. The run pauses until the owner approves each call.",
                            size="1", color=rx.color("gray", 10)),
                    form_error(AgentsState.form_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray",
                                                  type="button")),
                        rx.button("Save", type="submit", id="agent-save"),
                        justify="end", width="100%", spacing="3",
                    ),
                    spacing="2",
                ),
                on_submit=AgentsState.save,
                reset_on_submit=False,
            ),
            max_width="560px",
        ),
        open=AgentsState.dialog_open,
        on_open_change=AgentsState.set_dialog_open,
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(row["name"], weight="medium"),
                                rx.hstack(rx.code(row["id"], size="1"), copy_button(row["id"]),
                                          align="center", spacing="1"),
                                spacing="1")),
        rx.table.cell(rx.text(row["instructions"], size="2", color=rx.color("gray", 11),
                              max_width="320px", overflow="hidden", text_overflow="ellipsis",
                              white_space="nowrap")),
        rx.table.cell(rx.badge(row["provider"], variant="soft")),
        rx.table.cell(rx.text(row["approval_tools"], size="2")),
        rx.table.cell(rx.text(row["created_at"], size="2", white_space="nowrap")),
        rx.table.cell(rx.hstack(
            rx.button(rx.icon("pencil", size=14), "Edit", size="1", variant="soft",
                      on_click=AgentsState.open_edit(row)),
            confirm_delete("Delete this agent?",
                           "The agent is removed. Agents that still have smiths cannot be deleted.",
                           AgentsState.delete(row["id"])),
            spacing="2",
        )),
        align="center",
    )


def agents_page() -> rx.Component:
    new_button = rx.button(rx.icon("plus", size=14), "New agent", on_click=AgentsState.open_create)
    return page(
        "Agents",
        "An agent holds instructions, a model and approval rules; smiths are its instances.",
        rx.cond(
            AgentsState.agents.length() > 0,
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(
                        *[rx.table.column_header_cell(h) for h in
                          ("Agent", "Instructions", "Model", "Needs approval", "Created", "")]
                    )),
                    rx.table.body(rx.foreach(AgentsState.agents, _row)),
                    width="100%", variant="surface",
                ),
                load_more(AgentsState.next_cursor, AgentsState.load_more),
                width="100%",
            ),
            rx.cond(AgentsState.loaded,
                    empty_state("brain-circuit", "No agents yet",
                                "Create an agent to describe how your smiths should behave. "
                                "You can change it later.", new_button),
                    rx.center(rx.spinner(), padding="40px")),
        ),
        _dialog(),
        actions=new_button,
    )
