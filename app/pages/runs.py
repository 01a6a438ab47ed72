"""Runs: every execution of a smith, newest first, live while any is still going."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.components.layout import empty_state, load_more, page
from app.services.runs import SOURCES, STATUSES
from app.state.runs import ALL, RunsState

STATUS_COLORS: dict[str, Any] = {"queued": "gray", "running": "blue", "awaiting_approval": "amber",
                                 "completed": "green", "failed": "red", "cancelled": "gray"}
STATUS_ICONS = {"queued": "clock", "running": "loader", "awaiting_approval": "hand",
                "completed": "circle-check", "failed": "circle-x", "cancelled": "ban"}


def status_label(status: str) -> str:
    return status.replace("_", " ")


def status_badge(status: rx.Var | str, size: Any = "1") -> rx.Component:
    """A coloured badge for a run status (a var in tables, a plain string elsewhere)."""
    return rx.match(
        status,
        *[(s, rx.badge(rx.icon(STATUS_ICONS[s], size=12), status_label(s), color_scheme=STATUS_COLORS[s],
                       variant="soft", size=size, white_space="nowrap"))
          for s in STATUSES],
        rx.badge(status, variant="soft", size=size),
    )


def live_indicator(live: rx.Var) -> rx.Component:
    return rx.cond(
        live,
        rx.tooltip(rx.badge(rx.box(width="7px", height="7px", border_radius="50%", background=rx.color("grass", 9)),
                            "Live", color_scheme="grass", variant="surface", size="1"),
                   content="Updating every second while a run is active"),
        rx.fragment(),
    )


def _select(label: str, items: list[tuple[str, str]], value: rx.Var, on_change: Any,
            dynamic: rx.Component | None = None, select_id: str = "") -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color=rx.color("gray", 11)),
        rx.select.root(
            rx.select.trigger(min_width="150px", id=select_id),
            rx.select.content(*[rx.select.item(text, value=v) for v, text in items], dynamic or rx.fragment()),
            value=value, on_change=on_change, size="2",
        ),
        align="center", spacing="2",
    )


def _filters() -> rx.Component:
    return rx.hstack(
        _select("Status", [(ALL, "All statuses")] + [(s, status_label(s)) for s in STATUSES],
                RunsState.status_filter, RunsState.set_status_filter, select_id="runs-status-filter"),
        _select("Source", [(ALL, "All sources")] + [(s, s) for s in SOURCES],
                RunsState.source_filter, RunsState.set_source_filter, select_id="runs-source-filter"),
        _select("Smith", [(ALL, "All smiths")], RunsState.smith_filter, RunsState.set_smith_filter,
                rx.foreach(RunsState.smith_options, lambda s: rx.select.item(s["name"], value=s["id"])),
                select_id="runs-smith-filter"),
        rx.cond(RunsState.filtered,
                rx.button(rx.icon("x", size=14), "Clear", variant="ghost", size="1",
                          on_click=RunsState.clear_filters),
                rx.fragment()),
        spacing="5", align="center", padding_bottom="14px", wrap="wrap",
    )


def _row(row: rx.Var) -> rx.Component:
    href = "/runs/" + row["id"].to(str)
    muted = rx.color("gray", 11)
    return rx.table.row(
        rx.table.cell(status_badge(row["status"])),
        rx.table.cell(rx.vstack(
            rx.link(row["input"], href=href, weight="medium", size="2", max_width="220px", overflow="hidden",
                    text_overflow="ellipsis", white_space="nowrap", display="block"),
            rx.text(row["id"], size="1", color=rx.color("gray", 9), font_family="var(--code-font-family)"),
            spacing="1",
        )),
        rx.table.cell(rx.text(row["output"], size="2", color=muted, max_width="220px", overflow="hidden",
                              text_overflow="ellipsis", white_space="nowrap")),
        rx.table.cell(rx.link(row["smith_name"], href="/smiths/" + row["smith_id"].to(str), size="2",
                              white_space="nowrap")),
        rx.table.cell(rx.badge(row["source"], variant="outline", color_scheme="gray")),
        rx.table.cell(rx.text(row["created_at"], size="2", white_space="nowrap", color=muted)),
        align="center",
    )


def _empty() -> rx.Component:
    return rx.cond(
        RunsState.filtered,
        empty_state("filter-x", "No runs match these filters",
                    "Try another status, source or smith, or clear the filters to see every run.",
                    rx.button("Clear filters", variant="soft", on_click=RunsState.clear_filters)),
        empty_state("play", "No runs yet",
                    "A run starts when a deployment receives a message, a schedule fires, or you call "
                    "POST /v1/smiths/{smith_id}/runs. Each one shows up here with its status, its "
                    "conversation and any approval it waits for.",
                    rx.link(rx.button("Go to Smiths"), href="/smiths")),
    )


def runs_page() -> rx.Component:
    actions = rx.hstack(
        live_indicator(RunsState.live),
        rx.button(rx.icon("refresh-cw", size=14), "Refresh", variant="soft", on_click=RunsState.refresh),
        align="center", spacing="3",
    )
    return page(
        "Runs",
        "Each execution of a smith: from a message, a schedule or the API. Open one to see its "
        "conversation and decide approvals.",
        _filters(),
        rx.cond(
            RunsState.runs.length() > 0,
            rx.vstack(
                rx.scroll_area(rx.table.root(
                    rx.table.header(rx.table.row(
                        *[rx.table.column_header_cell(h) for h in
                          ("Status", "Input", "Output", "Smith", "Source", "Created (UTC)")]
                    )),
                    rx.table.body(rx.foreach(RunsState.runs, _row)),
                    width="100%", variant="surface",
                ), type="auto", scrollbars="horizontal", width="100%"),
                load_more(RunsState.next_cursor, RunsState.load_more),
                width="100%",
            ),
            rx.cond(RunsState.loaded, _empty(), rx.center(rx.spinner(), padding="40px")),
        ),
        actions=actions,
    )
