"""One run: what was asked, what happened step by step, what came out, and the approval it waits on."""

from __future__ import annotations

import reflex as rx

from app.components.layout import copy_button, empty_state, form_error, page
from app.pages.runs import live_indicator, status_badge
from app.state.run_detail import RunDetailState

MUTED = rx.color("gray", 11)


def _label(text: str) -> rx.Component:
    return rx.text(text, size="1", color=rx.color("gray", 10), weight="medium")


def _fact(label: str, value: rx.Component) -> rx.Component:
    return rx.vstack(_label(label), value, spacing="1")


def _header() -> rx.Component:
    run = RunDetailState.run
    cancel = rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button(rx.icon("square", size=14), "Cancel run", size="2", variant="soft",
                                          color_scheme="red", id="run-cancel")),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Cancel this run?"),
            rx.alert_dialog.description(
                "The run stops where it is and any pending approval is withdrawn. This cannot be undone.",
                size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep running", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Cancel run", color_scheme="red", on_click=RunDetailState.cancel)),
                spacing="3", justify="end", padding_top="16px",
            ),
            max_width="460px",
        ),
    )
    return rx.card(
        rx.hstack(
            rx.vstack(
                rx.hstack(status_badge(run["status"], size="2"), live_indicator(RunDetailState.live),
                          align="center", spacing="2"),
                rx.hstack(rx.code(run["id"], size="1"), copy_button(run["id"]), align="center", spacing="1"),
                spacing="2",
            ),
            rx.spacer(),
            _fact("Smith", rx.link(run["smith_name"], href="/smiths/" + run["smith_id"], size="2")),
            _fact("Source", rx.badge(run["source"], variant="outline", color_scheme="gray")),
            _fact("Created (UTC)", rx.text(run["created_at"], size="2")),
            _fact("Started", rx.text(rx.cond(run["started_at"] != "", run["started_at"], "—"), size="2")),
            _fact("Finished", rx.text(rx.cond(run["finished_at"] != "", run["finished_at"], "—"), size="2")),
            rx.cond(RunDetailState.is_active, cancel, rx.fragment()),
            align="center", spacing="5", width="100%", wrap="wrap",
        ),
        width="100%",
    )


def _approval() -> rx.Component:
    pending = RunDetailState.pending
    return rx.cond(
        RunDetailState.awaiting,
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("hand", size=18, color=rx.color("amber", 10)),
                          rx.heading("Waiting for your approval", size="3"), align="center", spacing="2"),
                rx.text("The smith wants to call ", rx.code(pending["tool"]), " with these arguments:", size="2"),
                rx.code_block(pending["arguments"], language="json", width="100%", font_size="12px",
                              custom_style={"margin": "0"}),
                rx.hstack(
                    rx.button(rx.icon("check", size=14), "Approve", color_scheme="green",
                              on_click=RunDetailState.approve, loading=RunDetailState.deciding, id="run-approve"),
                    rx.button(rx.icon("x", size=14), "Reject", color_scheme="red", variant="soft",
                              on_click=RunDetailState.reject, disabled=RunDetailState.deciding, id="run-reject"),
                    rx.button(rx.icon("pencil", size=14), "Edit…", variant="soft", color_scheme="gray",
                              on_click=RunDetailState.set_edit_open(~RunDetailState.edit_open),
                              disabled=RunDetailState.deciding, id="run-edit"),
                    spacing="3",
                ),
                rx.cond(
                    RunDetailState.edit_open,
                    rx.form(
                        rx.vstack(
                            rx.text("Instead of this call, tell the smith what to do:", size="2"),
                            rx.text_area(name="message", id="run-edit-message", rows="3", width="100%",
                                         placeholder="e.g. Remember the plan as “launch on Monday” instead."),
                            form_error(RunDetailState.edit_error),
                            rx.hstack(
                                rx.button("Discard", type="button", variant="soft", color_scheme="gray",
                                          on_click=RunDetailState.set_edit_open(False)),
                                rx.button("Send correction", type="submit", loading=RunDetailState.deciding,
                                          id="run-edit-send"),
                                spacing="3", justify="end", width="100%",
                            ),
                            spacing="2", width="100%",
                        ),
                        on_submit=RunDetailState.submit_edit, reset_on_submit=True, width="100%",
                    ),
                    rx.fragment(),
                ),
                spacing="3", width="100%",
            ),
            width="100%", border=f"1px solid {rx.color('amber', 7)}", background=rx.color("amber", 2),
        ),
        rx.fragment(),
    )


def _error() -> rx.Component:
    run = RunDetailState.run
    return rx.cond(
        run["error_message"] != "",
        rx.callout(rx.text(rx.code(run["error_code"]), " ", run["error_message"]), icon="circle-x",
                   color_scheme="red", width="100%"),
        rx.fragment(),
    )


def _output() -> rx.Component:
    run = RunDetailState.run
    return rx.cond(
        (run["status"] == "completed") | (run["output"] != ""),
        rx.card(
            rx.vstack(
                _label("OUTPUT"),
                rx.text(rx.cond(run["output"] != "", run["output"], "(no text)"), size="3",
                        white_space="pre-wrap", id="run-output"),
                rx.cond(
                    RunDetailState.chips.length() > 0,
                    rx.hstack(_label("Suggested replies"),
                              rx.foreach(RunDetailState.chips,
                                         lambda chip: rx.badge(chip, variant="surface", radius="full", size="2")),
                              spacing="2", align="center", wrap="wrap"),
                    rx.fragment(),
                ),
                spacing="2", width="100%",
            ),
            width="100%",
        ),
        rx.fragment(),
    )


def _bubble(item: rx.Var, mine: bool) -> rx.Component:
    return rx.box(
        rx.text("User" if mine else "Assistant", size="1", color=rx.color("gray", 10), padding_bottom="2px"),
        rx.text(item["content"], size="2", white_space="pre-wrap", word_break="break-word"),
        background=rx.color("accent", 3) if mine else rx.color("gray", 3),
        padding="8px 12px", border_radius="12px", max_width="80%",
        align_self="flex-end" if mine else "flex-start",
    )


def _tool_card(item: rx.Var, call: bool) -> rx.Component:
    failed = item["error"] == "1"
    edge = rx.color("accent", 8) if call else rx.cond(failed, rx.color("red", 9), rx.color("grass", 9))
    return rx.box(
        rx.hstack(
            rx.icon("wrench" if call else "corner-down-right", size=13, color=MUTED),
            rx.text("Tool call" if call else "Result of", size="1", color=MUTED),
            rx.code(item["title"], size="1"),
            align="center", spacing="2",
        ),
        rx.cond(
            item["content"] != "",
            rx.text(item["content"], size="1", white_space="pre-wrap", word_break="break-word",
                    font_family="var(--code-font-family)", padding_top="4px",
                    color=rx.cond(failed, rx.color("red", 11), rx.color("gray", 12))),
            rx.fragment(),
        ),
        border=f"1px solid {rx.color('gray', 5)}", border_left=f"3px solid {edge}",
        border_radius="6px", padding="6px 10px", max_width="80%", align_self="flex-start",
        background=rx.color("gray", 2),
    )


def _notice(item: rx.Var, icon: str) -> rx.Component:
    return rx.hstack(
        rx.icon(icon, size=12, color=rx.color("gray", 9)),
        rx.text(item["content"], size="1", color=rx.color("gray", 10)),
        align="center", spacing="1", align_self="center", max_width="90%",
    )


def _chat_item(item: rx.Var) -> rx.Component:
    return rx.box(
        rx.match(
            item["kind"],
            ("user", _bubble(item, True)),
            ("assistant", _bubble(item, False)),
            ("call", _tool_card(item, True)),
            ("result", _tool_card(item, False)),
            ("platform", _notice(item, "shield-check")),
            _notice(item, "info"),
        ),
        display="flex", flex_direction="column", width="100%",
        opacity=rx.cond(item["own"] == "1", "1", "0.55"),
    )


def _conversation() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(_label("CONVERSATION"), rx.spacer(),
                      rx.cond(RunDetailState.has_earlier_turns,
                              rx.text("Earlier turns of the thread are dimmed", size="1", color=rx.color("gray", 9)),
                              rx.fragment()),
                      width="100%"),
            rx.cond(
                RunDetailState.conversation.length() > 0,
                rx.vstack(rx.foreach(RunDetailState.conversation, _chat_item), spacing="2", width="100%"),
                rx.text("No messages yet.", size="2", color=MUTED),
            ),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _key_values(title: str, rows: rx.Var) -> rx.Component:
    return rx.cond(
        rows.length() > 0,  # type: ignore[attr-defined]
        rx.vstack(
            _label(title),
            rx.foreach(rows, lambda r: rx.hstack(
                rx.text(r["key"], size="1", color=MUTED, min_width="84px"),
                rx.text(r["value"], size="1", word_break="break-all"),
                spacing="2", align="start")),
            spacing="1", width="100%",
        ),
        rx.fragment(),
    )


def _details() -> rx.Component:
    return rx.card(
        rx.vstack(
            _label("INPUT"),
            rx.text(RunDetailState.run["input"], size="2", white_space="pre-wrap", word_break="break-word"),
            rx.divider(),
            _key_values("METADATA", RunDetailState.metadata),
            _key_values("USAGE", RunDetailState.usage),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _event(item: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.box(width="8px", height="8px", border_radius="50%", background=rx.color("accent", 8), margin_top="6px",
               flex_shrink="0"),
        rx.vstack(
            rx.hstack(rx.text("#" + item["seq"].to(str), size="1", color=rx.color("gray", 9)),
                      rx.badge(item["type"], variant="soft", size="1"),
                      rx.text(item["time"], size="1", color=rx.color("gray", 9)),
                      spacing="2", align="center"),
            rx.text(item["summary"], size="1", color=MUTED, word_break="break-all",
                    font_family="var(--code-font-family)"),
            spacing="1",
        ),
        spacing="2", align="start", width="100%",
    )


def _timeline() -> rx.Component:
    return rx.card(
        rx.vstack(_label("EVENTS"), rx.foreach(RunDetailState.events, _event), spacing="2", width="100%"),
        width="100%",
    )


def run_detail_page() -> rx.Component:
    return page(
        "Run",
        "One execution of a smith: its conversation, its events and what it produced.",
        rx.cond(
            RunDetailState.not_found,
            empty_state("play", "No such run", "It may belong to another project, or the link is wrong.",
                        rx.link(rx.button("Back to Runs"), href="/runs")),
            rx.cond(
                RunDetailState.loaded,
                rx.vstack(
                    _header(),
                    _approval(),
                    _error(),
                    _output(),
                    rx.grid(
                        _conversation(),
                        rx.vstack(_details(), _timeline(), spacing="4", width="100%"),
                        columns="minmax(0, 3fr) minmax(0, 2fr)", spacing="4", width="100%",
                    ),
                    spacing="4", width="100%",
                ),
                rx.center(rx.spinner(), padding="40px"),
            ),
        ),
        actions=rx.hstack(
            rx.link(rx.button(rx.icon("arrow-left", size=14), "All runs", variant="ghost"), href="/runs"),
            rx.button(rx.icon("refresh-cw", size=14), "Refresh", variant="soft", on_click=RunDetailState.refresh),
            spacing="3", align="center",
        ),
    )
