"""Settings → Integrations: provider credentials, once per project (CON-4)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import confirm_delete, copy_button, form_error, page
from app.state.integrations import IntegrationsState as S

LATER = [("Slack", "hash"), ("WhatsApp", "message-circle"), ("Email (Cloudflare)", "mail"),
         ("LinkedIn", "briefcase")]


def _fact(label: str, value: rx.Var | str) -> rx.Component:
    return rx.hstack(rx.text(label, size="2", color=rx.color("gray", 10), width="130px"),
                     rx.text(value, size="2"), align="center")


def _telegram_card() -> rx.Component:
    t = S.telegram
    connected = rx.vstack(
        rx.hstack(rx.badge("connected", color_scheme="green"), rx.text("@", t["bot_username"], weight="medium"),
                  rx.spacer(),
                  confirm_delete("Disconnect Telegram?", "The webhook is removed and Telegram deployments stop "
                                 "receiving messages until you connect a bot again.", S.disconnect_telegram,
                                 "Disconnect"),
                  align="center", width="100%"),
        _fact("Receiving by", rx.cond(t["mode"] == "webhook", "webhook", "long polling (no public HTTPS URL)")),
        rx.cond(t["webhook_url"] != "",
                rx.hstack(_fact("Webhook URL", t["webhook_url"]), copy_button(t["webhook_url"]), align="center"),
                rx.fragment()),
        _fact("Bot token", rx.text("set, ends in …", t["token_hint"])),
        _fact("Last delivery", rx.cond(t["last_delivery_at"] != "", t["last_delivery_at"], "none yet")),
        rx.cond(t["last_error"] != "", rx.callout(t["last_error"], icon="triangle-alert", color_scheme="red"),
                rx.fragment()),
        rx.foreach(S.telegram_steps, lambda step: rx.text("• ", step, size="1", color=rx.color("gray", 10))),
        spacing="2", width="100%",
    )
    form = rx.form(
        rx.vstack(
            rx.text("Create a bot with @BotFather in Telegram, then paste its token here.", size="2",
                    color=rx.color("gray", 11)),
            rx.hstack(
                rx.input(name="bot_token", id="bot-token", type="password", placeholder="123456789:AA…",
                         width="100%"),
                rx.button(rx.cond(t["configured"] != "", "Replace token", "Connect"), type="submit",
                          loading=S.connecting, id="connect-telegram"),
                width="100%",
            ),
            form_error(S.form_error),
            spacing="2", width="100%",
        ),
        on_submit=S.connect_telegram, reset_on_submit=True, width="100%",
    )
    return rx.card(rx.vstack(
        rx.hstack(rx.icon("send", size=20), rx.heading("Telegram", size="4"), align="center"),
        rx.cond(t["configured"] != "", connected, rx.fragment()),
        form,
        spacing="3", width="100%",
    ), width="100%")


def integrations_page() -> rx.Component:
    return page(
        "Integrations",
        "Provider credentials, configured once for the whole project. Secrets are stored encrypted and "
        "never shown again.",
        rx.vstack(
            _telegram_card(),
            rx.grid(*[rx.card(rx.hstack(rx.icon(icon, size=18), rx.text(name, weight="medium"), rx.spacer(),
                                        rx.badge("coming soon", color_scheme="gray"), align="center"))
                      for name, icon in LATER], columns="2", spacing="3", width="100%"),
            spacing="4", width="100%",
        ),
    )
