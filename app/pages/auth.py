"""Sign-in and first-start setup pages."""

from __future__ import annotations

import reflex as rx

from app.components.layout import form_error
from app.state.auth import AuthState


def _card(*children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("anvil", size=26), rx.heading("Ingram Deployments", size="5"),
                          align="center"),
                *children,
                spacing="4",
                width="100%",
            ),
            width="400px",
            padding="28px",
        ),
        height="100vh",
        background=rx.color("gray", 2),
    )


def login() -> rx.Component:
    return _card(
        rx.text("Sign in to the console.", color=rx.color("gray", 11), size="2"),
        rx.form(
            rx.vstack(
                rx.input(placeholder="Password", type="password", name="password", id="password",
                         width="100%", size="3", auto_focus=True),
                form_error(AuthState.auth_error),
                rx.button("Sign in", type="submit", width="100%", size="3"),
                spacing="3",
            ),
            on_submit=AuthState.sign_in,
            width="100%",
        ),
        rx.text("First start? Open the one-time setup link printed in the server log.",
                size="1", color=rx.color("gray", 10)),
    )


def setup() -> rx.Component:
    return _card(rx.cond(~AuthState.setup_checked, rx.center(rx.spinner(), padding="24px"), rx.cond(
            AuthState.setup_valid,
            rx.vstack(
                rx.text("Choose the console password (at least 10 characters).",
                        color=rx.color("gray", 11), size="2"),
                rx.form(
                    rx.vstack(
                        rx.input(placeholder="New password", type="password", name="password",
                                 id="password", width="100%", size="3"),
                        rx.input(placeholder="Repeat the password", type="password", name="confirm",
                                 id="confirm", width="100%", size="3"),
                        form_error(AuthState.auth_error),
                        rx.button("Set password and sign in", type="submit", width="100%", size="3"),
                        spacing="3",
                    ),
                    on_submit=AuthState.claim,
                    width="100%",
                ),
                width="100%",
            ),
            rx.callout(
                "This setup link is invalid, used or expired. Restart the server or run "
                "`./run.sh --setup-link` to print a new one.",
                icon="triangle-alert", color_scheme="amber",
            ),
        )),
    )
