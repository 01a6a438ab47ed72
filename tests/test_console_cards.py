"""What Settings → Integrations shows of Slack's app factory (issue 17 §7): the token's expiry and last
rotation in plain words (its "Dedicated apps" block), and a refused rotation as a warning, from the
integration's status alone."""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.tenant_setup import IntegrationStatus
from app.state.integration_cards import card_of
from channels.slack import SlackChannel


def test_the_factory_tokens_expiry_rotation_and_failure_show_on_the_card() -> None:
    status = IntegrationStatus(kind="slack", configured=True, status="connected", mode="webhook",
                               config_token_expires_at="2026-12-04T23:25:31+00:00",
                               config_rotated_at="2026-12-04T11:25:31+00:00", factory_team_id="T0TEAM",
                               credentials_error="slack_factory_token_invalid: Slack refused the refresh token")
    card = card_of(SlackChannel, status, now=datetime(2026, 12, 4, 15, 0, tzinfo=UTC))
    assert card["factory_summary"] == "Token expires 23:25 UTC (in 8 h), last renewed 11:25 UTC"
    facts = {fact["label"]: fact["value"] for fact in card["facts"]}
    assert "Credentials error" not in facts and not any("factory" in label.lower() for label in facts)
    assert card["renewal_error"].startswith("slack_factory_token_invalid")
    assert card["status"] == "Connected"  # the shared app still works


def test_a_card_without_renewal_trouble_has_no_warning() -> None:
    card = card_of(SlackChannel, IntegrationStatus(kind="slack", configured=True, status="connected"))
    assert card["renewal_error"] == ""
