"""What a WhatsApp conversation's row says about its 24-hour window (WA-4), from the deployment's view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services.deployments import DeploymentView, Target
from app.state.deployment_rows import reply_window

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def view(kind: str = "whatsapp", status: str = "active", ends: datetime | None = None) -> DeploymentView:
    return DeploymentView(id="dep_1", kind=kind, target=Target(type="smith", id="smi_1"), status=status,
                          address="306912345678", display_name=None, owner_identity="whatsapp:306912345678",
                          provider_metadata={}, created_at=NOW.isoformat(), bound_at=NOW.isoformat(),
                          reply_window_ends_at=ends.isoformat() if ends else None)


def test_open_closed_and_waiting_windows_read_plainly() -> None:
    assert reply_window(view(ends=NOW + timedelta(hours=3, minutes=5)), NOW) == (
        "Can reply until 13:05 UTC (in 3 h)", "green")
    assert reply_window(view(ends=NOW + timedelta(minutes=24, seconds=10)), NOW) == (
        "Can reply until 10:24 UTC (in 25 min)", "green")  # rounded up: never "in 0 min"
    assert reply_window(view(ends=NOW - timedelta(minutes=1)), NOW) == (
        "Window closed: the person must write first", "amber")
    assert reply_window(view(ends=None), NOW) == ("Waiting for their first message", "gray")


def test_channels_without_a_window_and_inactive_rows_say_nothing() -> None:
    assert reply_window(view(kind="telegram", ends=None), NOW) == ("", "")
    assert reply_window(view(status="pending", ends=NOW), NOW) == ("", "")
