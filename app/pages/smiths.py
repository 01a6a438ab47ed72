"""Smiths: persistent instances of agents, each with its own memory and threads."""

from __future__ import annotations

import reflex as rx

from app.components.layout import confirm_delete, copy_button, empty_state, form_error, load_more, page
from app.state.smiths import SmithsState


def _agent_select() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(placeholder="Choose an agent", width="100%"),
        rx.select.content(rx.foreach(
            SmithsState.agent_options,
            lambda a: rx.select.item(a["name"], value=a["id"]),
        )),
        name="agent_id",
        default_value=SmithsState.draft["agent_id"],
    )


def _dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(SmithsState.editing_id != "", "Rename smith", "New smith")),
            rx.form(
                rx.vstack(
                    rx.text("Name", size="2", weight="medium"),
                    rx.input(name="name", id="smith-name", default_value=SmithsState.draft["name"],
                             placeholder="Dana's assistant", width="100%"),
                    rx.cond(
                        SmithsState.editing_id == "",
                        rx.vstack(rx.text("Agent", size="2", weight="medium"), _agent_select(),
                                  width="100%"),
                        rx.fragment(),
                    ),
                    form_error(SmithsState.form_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray",
                                                  type="button")),
                        rx.button("Save", type="submit", id="smith-save"),
                        justify="end", width="100%", spacing="3",
                    ),
                    spacing="2",
                ),
                on_submit=SmithsState.save,
                reset_on_submit=False,
            ),
            max_width="480px",
        ),
        open=SmithsState.dialog_open,
        on_open_change=SmithsState.set_dialog_open,
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.link(row["name"], href="/smiths/" + row["id"], weight="medium"),
                                rx.hstack(rx.code(row["id"], size="1"), copy_button(row["id"]),
                                          align="center", spacing="1"),
                                spacing="1")),
        rx.table.cell(rx.text(row["agent_name"], size="2")),
        rx.table.cell(rx.badge(row["origin"], variant="soft", color_scheme="gray")),
        rx.table.cell(rx.text(row["created_at"], size="2", white_space="nowrap")),
        rx.table.cell(rx.hstack(
            rx.button(rx.icon("pencil", size=14), "Rename", size="1", variant="soft",
                      on_click=SmithsState.open_edit(row)),
            confirm_delete("Delete this smith?",
                           "Its memory, threads, runs and schedules are deleted, and its tokens "
                           "and deployments stop working. This cannot be undone.",
                           SmithsState.delete(row["id"])),
            spacing="2",
        )),
        align="center",
    )


def smiths_page() -> rx.Component:
    new_button = rx.button(rx.icon("plus", size=14), "New smith", on_click=SmithsState.open_create,
                           disabled=SmithsState.agent_options.length() == 0)
    return page(
        "Smiths",
        "A smith is a persistent instance of an agent with its own memory and conversations.",
        rx.cond(
            SmithsState.smiths.length() > 0,
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(
                        *[rx.table.column_header_cell(h) for h in
                          ("Smith", "Agent", "Origin", "Created", "")]
                    )),
                    rx.table.body(rx.foreach(SmithsState.smiths, _row)),
                    width="100%", variant="surface",
                ),
                load_more(SmithsState.next_cursor, SmithsState.load_more),
                width="100%",
            ),
            rx.cond(
                SmithsState.loaded,
                rx.cond(
                    SmithsState.agent_options.length() > 0,
                    empty_state("bot", "No smiths yet",
                                "Create a smith from one of your agents, then deploy it to "
                                "Telegram, Slack, email or MCP.", new_button),
                    empty_state("bot", "Create an agent first",
                                "Every smith is an instance of an agent.",
                                rx.link(rx.button("Go to Agents"), href="/agents")),
                ),
                rx.center(rx.spinner(), padding="40px"),
            ),
        ),
        _dialog(),
        actions=new_button,
    )
