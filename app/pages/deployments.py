"""Deployments (CON-1): every binding in the project with its target, kind, address and status."""

from __future__ import annotations

import reflex as rx

from app.components.badges import status_badge
from app.components.caller_tokens import caller_tokens_button, caller_tokens_dialog
from app.components.channel_card import kind_icon
from app.components.deployment_address import address_cell
from app.components.layout import confirm_delete, empty_state, load_more, page
from app.state.deployments import DeploymentsState
from channels import REGISTRY

CHANNEL_NAMES = " or ".join(cls.display_name for cls in REGISTRY.values())


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.hstack(kind_icon(row["kind"], size=14), rx.text(row["kind"], size="2"), align="center")),
        rx.table.cell(rx.vstack(
            rx.link(row["target_name"], href=row["target_href"], weight="medium", size="2"),
            rx.text(rx.cond(row["target_type"] == "agent", "agent catch-all", "smith"), size="1",
                    color=rx.color("gray", 10)),
            spacing="0")),
        rx.table.cell(address_cell(row)),
        rx.table.cell(rx.vstack(
            status_badge(row["status"]),
            rx.cond(row["revoked_note"] != "", rx.text(row["revoked_note"], size="1", color=rx.color("gray", 10))),
            spacing="1")),
        rx.table.cell(rx.text(row["owner"], size="2")),
        rx.table.cell(rx.text(row["created_at"], size="2", white_space="nowrap")),
        rx.table.cell(rx.cond(
            row["status"] != "revoked",
            rx.hstack(
                rx.cond(row["kind"] == "mcp", caller_tokens_button(row["id"]), rx.fragment()),
                confirm_delete("Remove this deployment?",
                               "Messages on this surface stop reaching the target, and the smith loses "
                               "its send tool.", DeploymentsState.remove(row["id"]), "Remove"),
                spacing="2"))),
        align="center",
    )


def deployments_page() -> rx.Component:
    return page(
        "Deployments",
        "Every binding of a messaging surface to a smith or an agent catch-all.",
        rx.el.label(
            rx.hstack(
                rx.switch(checked=DeploymentsState.show_revoked, on_change=DeploymentsState.toggle_revoked,
                          id="show-revoked"),
                rx.text("Show revoked (deleted, replaced by a newer link, or their agent deleted)", size="2"),
                align="center", spacing="2",
            ),
        ),
        rx.cond(
            DeploymentsState.deployments.length() > 0,
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                        "Kind", "Target", "Address", "Status", "Owner", "Created", "")])),
                    rx.table.body(rx.foreach(DeploymentsState.deployments, _row)),
                    width="100%", variant="surface",
                ),
                load_more(DeploymentsState.next_cursor, DeploymentsState.load_more),
                caller_tokens_dialog(),
                width="100%",
            ),
            rx.cond(
                DeploymentsState.loaded,
                empty_state("radio-tower", "No deployments yet",
                            f"Connect {CHANNEL_NAMES} under Settings → Integrations, then open a smith and "
                            "create a link in its Deployments tab (or an MCP endpoint, which needs nothing).",
                            rx.hstack(rx.link(rx.button("Connect a channel"), href="/settings/integrations"),
                                      rx.link(rx.button("Go to Smiths", variant="soft"), href="/smiths"))),
                rx.center(rx.spinner(), padding="40px"),
            ),
        ),
    )
