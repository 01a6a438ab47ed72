"""Settings → Integrations: provider credentials, once per project (CON-4). One card per registered
channel (app/components/channel_card.py)."""

from __future__ import annotations

import reflex as rx

from app.components.channel_card import channel_card
from app.components.layout import page
from app.state.integrations import IntegrationsState as S


def integrations_page() -> rx.Component:
    return page(
        "Integrations",
        "Provider credentials, configured once for the whole project. Secrets are stored encrypted and "
        "never shown again.",
        rx.vstack(
            rx.foreach(S.cards, channel_card),
            spacing="4", width="100%",
        ),
    )
