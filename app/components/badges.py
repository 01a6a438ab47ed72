"""Status badges with one colour scheme everywhere."""

from __future__ import annotations

from typing import Any

import reflex as rx

STATUS_COLORS = {"active": "green", "pending": "amber", "revoked": "gray", "completed": "green",
                 "failed": "red", "cancelled": "gray", "queued": "blue", "running": "blue",
                 "awaiting_approval": "amber"}


def status_badge(status: Any) -> rx.Component:
    return rx.match(
        status,
        *[(name, rx.badge(name.replace("_", " "), color_scheme=color, variant="soft"))  # type: ignore[arg-type]
          for name, color in STATUS_COLORS.items()],
        rx.badge(status, variant="soft"),
    )


def reply_window_badge(text: Any, color: Any) -> rx.Component:
    """Whether the smith can write in a conversation now (WhatsApp's 24-hour window); nothing when empty."""
    return rx.cond(text != "", rx.badge(rx.icon("clock", size=12), text, color_scheme=color, variant="soft",
                                        size="1", white_space="nowrap"), rx.fragment())
