"""A smith's Schedules tab (CON-3): cron entries with what they mean, when they fire next, a pause
switch, Run now, and the last run's status linking to the run."""

from __future__ import annotations

import reflex as rx

from app.components.layout import confirm_delete, empty_state, form_error
from app.state.schedules import AUTO, SchedulesState

STATUS_COLORS = {"completed": "green", "failed": "red", "cancelled": "gray", "running": "blue",
                 "queued": "amber", "awaiting_approval": "orange"}

_HELP = ("Five fields: minute hour day-of-month month day-of-week, e.g. 0 8 * * 1-5 for 08:00 on weekdays, "
         "*/15 * * * * for every 15 minutes. @daily, @hourly and @weekly work too.")


def _field_error(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.text(message, size="1", color=rx.color("red", 11)), rx.fragment())


def _preview() -> rx.Component:
    return rx.cond(
        SchedulesState.preview_description != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("calendar-clock", size=16)),
            rx.vstack(
                rx.text(SchedulesState.preview_description, weight="medium", size="2", id="schedule-preview"),
                rx.text("Next: ", rx.foreach(SchedulesState.preview_fires,
                                             lambda f, i: rx.text.span(rx.cond(i > 0, " · ", ""), f)),
                        size="1", color=rx.color("gray", 11)),
                spacing="1",
            ),
            size="1", variant="surface", width="100%",
        ),
        rx.fragment(),
    )


def _replies_go_to() -> rx.Component:
    """SCH-2: where the reply goes. Shown as the rule it is, with the smith's conversations to pick from."""
    return rx.cond(
        SchedulesState.conversations.length() > 0,
        rx.vstack(
            rx.text("Replies go to", size="2", weight="medium"),
            rx.select.root(
                rx.select.trigger(id="schedule-deployment", width="100%"),
                rx.select.content(
                    rx.select.item("The most recently active conversation", value=AUTO),
                    rx.foreach(SchedulesState.conversations,
                               lambda c: rx.select.item(c["label"], value=c["id"])),
                ),
                value=SchedulesState.form_deployment, on_change=SchedulesState.set_form_deployment,
            ),
            rx.text("By default the reply goes to the conversation this smith last heard from. Pick one to "
                    "always use it while it stays bound.", size="1", color=rx.color("gray", 10)),
            spacing="1", width="100%",
        ),
        rx.text("This smith has no bound conversation yet, so replies stay on the run. Bind one in the "
                "Deployments tab and they reach the person there.", size="1", color=rx.color("amber", 11)),
    )


def _dialog() -> rx.Component:
    label = {"size": "2", "weight": "medium"}
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(SchedulesState.editing_id != "", "Edit schedule", "New schedule")),
            rx.vstack(
                rx.text("Name", **label),
                rx.input(value=SchedulesState.form_name, on_change=SchedulesState.set_form_name,
                         id="schedule-name", placeholder="Morning briefing", width="100%"),
                rx.hstack(
                    rx.vstack(
                        rx.text("Cron", **label),
                        rx.input(value=SchedulesState.form_cron, on_change=SchedulesState.set_form_cron,
                                 id="schedule-cron", placeholder="0 8 * * *", font_family="monospace",
                                 width="100%"),
                        _field_error(SchedulesState.cron_error),
                        width="50%", spacing="1",
                    ),
                    rx.vstack(
                        rx.text("Time zone", **label),
                        rx.input(value=SchedulesState.form_timezone, on_change=SchedulesState.set_form_timezone,
                                 id="schedule-timezone", placeholder="Europe/Athens", width="100%"),
                        _field_error(SchedulesState.timezone_error),
                        width="50%", spacing="1",
                    ),
                    width="100%", spacing="3", align="start",
                ),
                rx.text(_HELP, size="1", color=rx.color("gray", 10)),
                _preview(),
                rx.text("Message", **label),
                rx.text_area(value=SchedulesState.form_message, on_change=SchedulesState.set_form_message,
                             id="schedule-message", rows="4", width="100%",
                             placeholder="Compose my morning briefing: calendar, news, reminders."),
                rx.text("The smith receives this as a message each time the schedule fires.",
                        size="1", color=rx.color("gray", 10)),
                _replies_go_to(),
                rx.cond(SchedulesState.form_note != "",
                        rx.text(SchedulesState.form_note, size="1", color=rx.color("amber", 11)), rx.fragment()),
                form_error(SchedulesState.form_error),
                rx.hstack(
                    rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                    rx.button("Save", id="schedule-save", on_click=SchedulesState.save,
                              disabled=(SchedulesState.cron_error != "") | (SchedulesState.timezone_error != "")),
                    justify="end", width="100%", spacing="3",
                ),
                spacing="2",
            ),
            max_width="600px",
        ),
        open=SchedulesState.dialog_open,
        on_open_change=SchedulesState.set_dialog_open,
    )


def _last_run(row: rx.Var) -> rx.Component:
    return rx.cond(
        row["last_run_id"] != "",
        rx.link(rx.badge(row["last_run_status"], color_scheme=rx.match(
            row["last_run_status"], *STATUS_COLORS.items(), "gray"), variant="soft"),
                href="/runs/" + row["last_run_id"], title="Open the last run"),
        rx.text("No runs yet", size="1", color=rx.color("gray", 10)),
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(
            rx.text(row["name"], weight="medium"),
            rx.text(row["description"], size="2", color=rx.color("gray", 11)),
            rx.code(row["cron"], size="1"),
            spacing="1",
        )),
        rx.table.cell(rx.vstack(
            rx.text(row["next_fire"], size="2", white_space="nowrap"),
            rx.text(row["later_fires"], size="1", color=rx.color("gray", 10), max_width="260px"),
            spacing="1",
        )),
        rx.table.cell(rx.text(row["delivers_to"], size="2", max_width="220px")),
        rx.table.cell(_last_run(row)),
        rx.table.cell(rx.switch(checked=row["enabled"] == "true", title="Enabled",
                                on_change=lambda value: SchedulesState.set_enabled(row["id"], value))),
        rx.table.cell(rx.hstack(
            rx.button(rx.icon("play", size=14), "Run now", size="1", variant="soft",
                      on_click=SchedulesState.run_now(row["id"])),
            rx.button(rx.icon("pencil", size=14), "Edit", size="1", variant="soft",
                      on_click=SchedulesState.open_edit(row)),
            confirm_delete("Delete this schedule?",
                           "It stops firing. Runs it already started stay in Runs.",
                           SchedulesState.delete(row["id"])),
            spacing="2",
        )),
        align="center",
    )


def schedules_tab() -> rx.Component:
    new_button = rx.button(rx.icon("plus", size=14), "New schedule", on_click=SchedulesState.open_create)
    return rx.box(
        rx.cond(
            SchedulesState.schedules.length() > 0,
            rx.vstack(
                rx.hstack(rx.text("Each schedule runs this smith on its message at the times its cron names.",
                                  size="2", color=rx.color("gray", 11)),
                          rx.spacer(), new_button, width="100%", align="center"),
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                                   ("Schedule", "Next", "Replies go to", "Last run", "Enabled", "")])),
                    rx.table.body(rx.foreach(SchedulesState.schedules, _row)),
                    width="100%", variant="surface",
                ),
                width="100%", spacing="3",
            ),
            rx.cond(
                SchedulesState.loaded,
                empty_state("calendar-clock", "No schedules yet",
                            "A schedule runs this smith at set times: a morning briefing, a weekly digest, "
                            "a reminder. Its reply reaches the person through a bound deployment.", new_button),
                rx.center(rx.spinner(), padding="40px"),
            ),
        ),
        _dialog(),
        width="100%",
    )
