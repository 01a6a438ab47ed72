"""The "Messaging" block of a channel behind an approval gate (LinkedIn, LI-1/LI-3) on its Settings →
Integrations card: the one-time consent link for a Page admin, and the messaging switch, each saying what
it does before it does it."""

from __future__ import annotations

import reflex as rx

from app.components.layout import copy_button
from app.state.integrations import IntegrationsState as S

GRAY = rx.color("gray", 11)


def _consent_link(card: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text("Open this link as an administrator of the Page, or send it to one. It works once, until ",
                card["consent_link_expires"], " UTC.", size="2"),
        rx.hstack(rx.code(card["consent_link"], size="1", word_break="break-all", id=f"{card['kind']}-consent-url"),
                  copy_button(card["consent_link"], "Copy consent link"), align="center", width="100%"),
        rx.image(src=card["consent_qr"], width="148px", height="148px", alt="QR code of the consent link"),
        spacing="2", width="100%",
    )


def _switch_dialog(card: rx.Var) -> rx.Component:
    """Switching messages on or off always asks first, saying what changes."""
    on = card["messaging_on"].to(bool)
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button(
            rx.cond(on, "Switch messaging off", "Switch messaging on"), size="2", variant="soft",
            color_scheme=rx.cond(on, "red", "green"), disabled=~card["consent_given"].to(bool) & ~on,
            id=f"{card['kind']}-messaging-switch")),
        rx.alert_dialog.content(
            rx.alert_dialog.title(rx.cond(on, "Switch messaging off?", "Switch messaging on?")),
            rx.alert_dialog.description(rx.cond(
                on, "No message will move in or out: members' messages are acknowledged and dropped, and replies "
                    "and the smiths' own messages fail with linkedin_messaging_disabled.",
                "Only do this once LinkedIn has approved your app for Page messages: members' messages will then "
                "reach your catch-all and smiths, and their replies go back to the Page's conversations."),
                size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(rx.cond(on, "Switch off", "Switch on"),
                                                 color_scheme=rx.cond(on, "red", "green"),
                                                 on_click=S.set_messaging(card["kind"], ~on),
                                                 id=f"{card['kind']}-messaging-confirm")),
                spacing="3", justify="end", padding_top="16px",
            ),
            max_width="460px",
        ),
    )


def messaging_gate(card: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text("Messaging", size="2", weight="medium"),
        rx.cond(card["messaging_on"].to(bool),
                rx.callout("Messaging is on.", icon="circle-check", color_scheme="green", width="100%",
                           id=f"{card['kind']}-messaging-state"),
                rx.callout(rx.cond(card["consent_given"].to(bool),
                                   "Messaging is off, awaiting LinkedIn's approval of your app for Page messages. "
                                   "Nothing moves in or out until you switch it on.",
                                   "Messaging is off. First a Page admin gives consent with a link made here; then, "
                                   "once LinkedIn has approved your app for Page messages, you switch it on."),
                           icon="hourglass", color_scheme="amber", width="100%", id=f"{card['kind']}-messaging-state")),
        rx.hstack(
            rx.button(rx.icon("link", size=14), rx.cond(card["consent_given"].to(bool), "Make a new consent link",
                                                        "Make a consent link"),
                      size="2", variant="soft", on_click=S.make_consent_link(card["kind"]),
                      id=f"{card['kind']}-consent-button"),
            _switch_dialog(card),
            spacing="3", wrap="wrap",
        ),
        rx.cond(card["consent_link"] != "", _consent_link(card), rx.fragment()),
        spacing="2", width="100%", id=f"{card['kind']}-gate",
    )
