"""Pages whose features land in later releases: they say what will be here and what to do now."""

from __future__ import annotations

import reflex as rx

from app.components.layout import empty_state, page


def deployments_page() -> rx.Component:
    return page(
        "Deployments",
        "Every binding of a messaging surface (Telegram, Slack, WhatsApp, email, MCP) to a smith "
        "or agent.",
        empty_state("radio-tower", "No deployments yet",
                    "Deployments connect your smiths to Telegram, Slack, WhatsApp, email, LinkedIn "
                    "and MCP clients. Channel setup arrives in the next release; meanwhile create "
                    "your agents and smiths.",
                    rx.link(rx.button("Go to Smiths"), href="/smiths")),
    )


def runs_page() -> rx.Component:
    return page(
        "Runs",
        "Each execution of a smith: from a message, a schedule or the API.",
        empty_state("play", "No runs yet",
                    "Runs appear here when a deployment receives a message, a schedule fires, or "
                    "the API starts one."),
    )


def integrations_page() -> rx.Component:
    providers = [("Telegram", "send"), ("Slack", "slack"), ("WhatsApp", "message-circle"),
                 ("Email (Cloudflare)", "mail"), ("LinkedIn", "linkedin")]
    return page(
        "Integrations",
        "Provider credentials, configured once for the whole project.",
        rx.grid(
            *[rx.card(rx.hstack(rx.icon(icon, size=20), rx.text(name, weight="medium"),
                                rx.spacer(), rx.badge("not connected", color_scheme="gray"),
                                align="center"))
              for name, icon in providers],
            columns="2", spacing="3", width="100%",
        ),
        rx.text("Connection forms arrive with each channel's release.", size="2",
                color=rx.color("gray", 10), padding_top="12px"),
    )
