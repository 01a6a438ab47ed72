"""What the console shows and sends for dedicated Slack apps (issue 17), from its pure helpers: where a
dedicated app's conversation is, the app factory's token in plain words on Settings → Integrations, when a
smith's Deployments tab offers an app, and the body the creation dialog sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services.installations import InstallationView
from app.services.tenant_setup import IntegrationStatus
from app.state.deployment_rows import _place, app_factory
from app.state.integration_cards import card_of
from app.state.slack_apps import factory_summary, prompts_of, provision_body
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
NAMES = {("slack", "T0TEAM"): "Acme", ("slack", "A0APP:T0TEAM"): "Acme"}


def factory(expires: datetime | None, rotated: datetime | None = None, **extra: str) -> dict[str, str]:
    public = {"config_token_expires_at": expires.isoformat() if expires else "",
              "config_rotated_at": rotated.isoformat() if rotated else ""}
    return {**public, **extra}


def slack_status(**public: object) -> IntegrationStatus:
    return IntegrationStatus(kind="slack", configured=True, status="connected", mode="webhook", **public)


def test_a_dedicated_apps_conversation_shows_its_workspace_like_the_shared_apps() -> None:
    assert _place("slack", "T0TEAM:D0CHAN", NAMES) == ("Acme", "D0CHAN")
    assert _place("slack", "A0APP:T0TEAM:D0CHAN", NAMES) == ("Acme", "D0CHAN")
    # A workspace not (or no longer) installed shows its id, never the app id glued to it.
    assert _place("slack", "A0OTHER:T0ELSE:D0CHAN", NAMES) == ("T0ELSE", "D0CHAN")
    assert _place("slack", None, NAMES) == ("", "")
    assert _place("telegram", "12345", NAMES) == ("", "")


def test_the_factory_token_reads_in_plain_words() -> None:
    fresh = factory(NOW + timedelta(hours=11, minutes=13), NOW - timedelta(minutes=47))
    assert factory_summary(fresh, NOW) == ("Token renews automatically; expires 02:13 UTC (in 11 h), "
                                           "last renewed 14:13 UTC")
    soon = factory(NOW + timedelta(minutes=40), NOW - timedelta(hours=11, minutes=20))
    assert factory_summary(soon, NOW) == ("Token renews automatically; expires 15:40 UTC (in 40 min), "
                                          "last renewed 03:40 UTC")
    yesterday = factory(NOW + timedelta(hours=1), NOW - timedelta(hours=16))
    assert factory_summary(yesterday, NOW).endswith("last renewed 2026-12-03 23:00 UTC")  # another day: dated
    # A refused renewal: the card's warning says why; the summary no longer promises a renewal.
    assert factory_summary(soon, NOW, failing=True) == "Token expires 15:40 UTC (in 40 min), last renewed 03:40 UTC"
    gone = factory(NOW - timedelta(minutes=5))
    assert factory_summary(gone, NOW) == "Token expired at 14:55 UTC; it is being renewed"
    assert factory_summary(gone, NOW, failing=True) == "Token expired at 14:55 UTC"
    assert factory_summary(factory(None), NOW) == ""
    assert factory_summary({"config_token_expires_at": "not a time"}, NOW) == ""


def test_the_slack_card_has_a_dedicated_apps_block_instead_of_raw_facts() -> None:
    status = slack_status(**factory(NOW + timedelta(hours=11), NOW - timedelta(hours=1)), factory_team_id="T0TEAM",
                          factory_user_id="U0OWNER",
                          installations=[InstallationView(
                              id="ins_1", external_id="T0TEAM", name="Acme", status="active", installer="U0OWNER",
                              scopes=[], user_scopes=[], created_at=NOW.isoformat(), updated_at=NOW.isoformat(),
                              revoked_at=None)])
    card = card_of(SlackChannel, status, NOW)
    assert card["factory_block"] is True
    assert card["factory_summary"] == ("Token renews automatically; expires 02:00 UTC (in 11 h), "
                                       "last renewed 14:00 UTC")
    assert card["factory_workspace"] == "Acme"  # its name where that workspace installed the shared app
    labels = " ".join(fact["label"] for fact in card["facts"])
    assert "factory" not in labels.lower() and "token" not in labels.lower()  # said once, in the block
    assert card["renewal_error"] == ""


def test_a_refused_renewal_and_a_missing_factory_show_on_the_card() -> None:
    failing = card_of(SlackChannel, slack_status(**factory(NOW + timedelta(minutes=30)), factory_team_id="T0TEAM",
                                                 credentials_error="slack_factory_token_invalid: Slack refused"),
                      NOW)
    assert failing["renewal_error"].startswith("slack_factory_token_invalid")
    assert failing["factory_summary"] == "Token expires 15:30 UTC (in 30 min)"
    assert failing["factory_workspace"] == "T0TEAM"  # no installation names it: its id
    assert failing["status"] == "Connected"  # the shared app still works

    without = card_of(SlackChannel, slack_status(), NOW)
    assert without["factory_block"] is True and without["factory_summary"] == ""  # the block says how to add one
    assert card_of(SlackChannel, IntegrationStatus(kind="slack", configured=False), NOW)["factory_block"] is False
    telegram = IntegrationStatus(kind="telegram", configured=True, status="connected", mode="polling")
    assert card_of(TelegramChannel, telegram, NOW)["factory_block"] is False


def test_the_deployments_tab_offers_an_app_only_with_a_factory() -> None:
    assert app_factory(SlackChannel, {"config_token_expires_at": NOW.isoformat()}) == "ready"
    assert app_factory(SlackChannel, {"client_id": "1.2"}) == "missing"
    assert app_factory(TelegramChannel, {"config_token_expires_at": NOW.isoformat()}) == ""


def test_the_dialog_sends_a_provision_setup_with_the_assistant_settings() -> None:
    form = {"display_name": "Dana's PA", "greeting": " Hi! How can I help? ", "prompt_1": "Summarise my day",
            "prompt_2": "  ", "prompt_3": " Draft a reply "}
    body = provision_body("smi_1", " Dana's PA ", assistant=True, greeting=form["greeting"],
                          prompts=prompts_of(form))
    assert body.kind == "slack" and body.target.id == "smi_1" and body.target.type == "smith"
    assert body.setup == {"mode": "provision", "display_name": "Dana's PA"}
    assert body.provider_metadata == {"assistant": True, "greeting": "Hi! How can I help?",
                                      "suggested_prompts": ["Summarise my day", "Draft a reply"]}
    plain = provision_body("smi_1", "Dana's PA", assistant=False, greeting="Hello", prompts=["Ask me"])
    assert plain.provider_metadata == {"assistant": False}  # no pane: no greeting, no prompts
    bare = provision_body("smi_1", "Dana's PA", assistant=True)
    assert bare.provider_metadata == {"assistant": True}
    assert prompts_of({}) == ["", "", "", ""]
