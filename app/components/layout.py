"""The console frame: sidebar navigation, page header, empty states, confirmations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from app.state.auth import AuthState

NAV = [
    ("Deployments", "/deployments", "radio-tower"),
    ("Smiths", "/smiths", "bot"),
    ("Agents", "/agents", "brain-circuit"),
    ("Runs", "/runs", "play"),
    ("Events", "/events", "list"),
]
SETTINGS_NAV = [("Integrations", "/settings/integrations", "plug")]


def _nav_link(label: str, href: str, icon: str) -> rx.Component:
    active = rx.State.router.url.path.startswith(href)  # type: ignore[attr-defined]
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), align="center", spacing="2"),
        href=href,
        underline="none",
        padding="6px 10px",
        border_radius="6px",
        width="100%",
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 12)),
        background=rx.cond(active, rx.color("accent", 3), "transparent"),
        _hover={"background": rx.color("gray", 3)},
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.icon("anvil", size=22), rx.heading("Ingram", size="4"), align="center",
                  padding_x="10px", padding_bottom="12px"),
        *[_nav_link(*item) for item in NAV],
        rx.text("Settings", size="1", color=rx.color("gray", 10), padding="14px 10px 4px"),
        *[_nav_link(*item) for item in SETTINGS_NAV],
        rx.spacer(),
        rx.button(rx.icon("log-out", size=14), "Sign out", variant="ghost", color_scheme="gray",
                  on_click=AuthState.sign_out, size="2"),
        width="220px",
        min_width="220px",
        height="100vh",
        padding="20px 12px",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        position="sticky",
        top="0",
        spacing="1",
    )


def page(title: str, description: str, *children: rx.Component,
         actions: rx.Component | None = None) -> rx.Component:
    return rx.hstack(
        sidebar(),
        rx.box(
            rx.hstack(
                rx.vstack(rx.heading(title, size="6"),
                          rx.text(description, color=rx.color("gray", 11), size="2"),
                          spacing="1"),
                rx.spacer(),
                actions or rx.fragment(),
                align="start",
                width="100%",
                padding_bottom="20px",
            ),
            *children,
            padding="28px 36px",
            flex="1",
            min_width="0",
            max_width="1240px",
        ),
        spacing="0",
        align="start",
        width="100%",
    )


def empty_state(icon: str, title: str, text: str, action: rx.Component | None = None) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon(icon, size=36, color=rx.color("gray", 9)),
            rx.heading(title, size="4"),
            rx.text(text, color=rx.color("gray", 11), size="2", text_align="center", max_width="440px"),
            action or rx.fragment(),
            align="center",
            spacing="3",
        ),
        padding="56px 24px",
        border=f"1px dashed {rx.color('gray', 6)}",
        border_radius="12px",
        width="100%",
    )


def confirm_delete(title: str, text: str, on_confirm: Any, trigger_label: str = "Delete") -> rx.Component:
    """A destructive action always asks first."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(rx.icon("trash-2", size=14), trigger_label, size="1", variant="soft",
                      color_scheme="red"),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(text, size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Delete", color_scheme="red", on_click=on_confirm)),
                spacing="3", justify="end", padding_top="16px",
            ),
            max_width="460px",
        ),
    )


def copy_button(value: Any, label: str = "Copy") -> rx.Component:
    return rx.icon_button(
        rx.icon("copy", size=12), size="1", variant="ghost", title=label,
        on_click=[rx.set_clipboard(value), rx.toast.info("Copied")],
    )


def load_more(next_cursor: Any, on_click: Callable[..., Any]) -> rx.Component:
    return rx.cond(
        next_cursor != "",
        rx.center(rx.button("Load more", variant="soft", on_click=on_click), padding_top="16px"),
        rx.fragment(),
    )


def form_error(message: Any) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", size="1", width="100%"),
        rx.fragment(),
    )
