"""A smith's Schedules tab (CON-3)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import empty_state


def schedules_tab() -> rx.Component:
    return empty_state("calendar-clock", "No schedules yet", "Cron schedules arrive in the next release.")
