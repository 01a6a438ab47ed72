"""The caller tokens of an MCP deployment (issue 13): a button for its row, and one dialog per page."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.components.layout import confirm_delete, copy_button, form_error
from app.state.caller_tokens import CallerTokensState as S


def caller_tokens_button(deployment_id: Any) -> rx.Component:
    return rx.button(rx.icon("key-round", size=14), "Caller tokens", size="1", variant="soft",
                     on_click=S.open_for(deployment_id), class_name="caller-tokens")


def _minted() -> rx.Component:
    return rx.cond(
        S.minted != "",
        rx.callout(rx.vstack(
            rx.text("Copy this token now: it is shown only once.", weight="medium"),
            rx.hstack(rx.code(S.minted, id="caller-token-value", size="2", word_break="break-all"),
                      copy_button(S.minted, "Copy token"), align="center"),
            spacing="1"), icon="key-round", color_scheme="green", width="100%"),
        rx.fragment(),
    )


def _row(token: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(token["subject"], size="2", weight="medium"),
                                rx.text(token["name"], size="1", color=rx.color("gray", 10)), spacing="0")),
        rx.table.cell(rx.code(token["hint"], size="1")),
        rx.table.cell(rx.text(token["created_at"], size="1", white_space="nowrap")),
        rx.table.cell(rx.text(token["last_used_at"], size="1", white_space="nowrap")),
        rx.table.cell(confirm_delete("Revoke this caller token?",
                                     "The caller can no longer reach this endpoint. Its smith, memory and "
                                     "conversation stay: a new token with the same name finds them again.",
                                     S.revoke(token["id"]), "Revoke")),
        align="center",
    )


def caller_tokens_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Caller tokens"),
            rx.dialog.description(
                "A caller token lets one MCP client call this endpoint, and nothing else in the project. "
                "On an agent catch-all, each caller name gets a smith of its own.", size="2"),
            rx.form(
                rx.hstack(
                    rx.input(name="subject", id="caller-subject", placeholder="Caller name (e.g. alice-laptop)",
                             max_length=64, required=True, flex="1"),
                    rx.input(name="name", placeholder="Note (optional)", max_length=200, flex="1"),
                    rx.button(rx.icon("plus", size=14), "Create caller token", type="submit",
                              id="create-caller-token"),
                    spacing="2", width="100%", padding_top="12px",
                ),
                on_submit=S.create,
                reset_on_submit=True,
            ),
            rx.box(form_error(S.form_error), padding_top="8px"),
            rx.box(_minted(), padding_top="8px"),
            rx.cond(
                S.tokens.length() > 0,
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                        "Caller", "Token", "Created", "Last used", "")])),
                    rx.table.body(rx.foreach(S.tokens, _row)),
                    width="100%", variant="surface", margin_top="12px",
                ),
                rx.text("No caller tokens yet.", size="2", color=rx.color("gray", 10), padding_top="12px"),
            ),
            rx.hstack(rx.dialog.close(rx.button("Done", variant="soft", color_scheme="gray")),
                      justify="end", padding_top="16px"),
            max_width="720px",
        ),
        open=S.dialog_open,
        on_open_change=S.set_dialog_open,
    )
