"""Settings → Integrations: provider credentials, once per project (CON-4). One card per registered
channel (app/components/channel_card.py); the kinds not built yet are listed as coming soon."""

from __future__ import annotations

import reflex as rx

from app.components.channel_card import channel_card, kind_icon
from app.components.layout import page
from app.state.integrations import IntegrationsState as S
from channels import REGISTRY

PLANNED = [("whatsapp", "WhatsApp"), ("email", "Email (Cloudflare)"), ("linkedin", "LinkedIn")]


def _coming_soon() -> rx.Component:
    later = [(kind, name) for kind, name in PLANNED if kind not in REGISTRY]
    if not later:
        return rx.fragment()
    return rx.grid(*[rx.card(rx.hstack(kind_icon(kind, size=18), rx.text(name, weight="medium"), rx.spacer(),
                                       rx.badge("coming soon", color_scheme="gray"), align="center"))
                     for kind, name in later], columns="2", spacing="3", width="100%")


def integrations_page() -> rx.Component:
    return page(
        "Integrations",
        "Provider credentials, configured once for the whole project. Secrets are stored encrypted and "
        "never shown again.",
        rx.vstack(
            rx.foreach(S.cards, channel_card),
            _coming_soon(),
            spacing="4", width="100%",
        ),
    )
