"""What the console shows and sends for email on the customer's Cloudflare (issue 18), from its pure helpers:
the Email card in plain words (Email Routing, the Worker), the Deployments tab's "Create email inbox" offer,
an inbox's row (its From name renamed in place, its owner, what removing it says), the body the dialog sends,
and refusals named by the form's labels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.services.deployments import DeploymentUpdate
from app.services.errors import Conflict, Invalid
from app.services.tenant_setup import IntegrationStatus
from app.state.deployment_rows import OWN_APPS, address_factory, address_offer, app_factory, own_app_fields
from app.state.email_inboxes import in_words, inbox_body, owner_email_problem
from app.state.integration_cards import card_of, email_facts
from channels.email import EmailChannel
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel
from models import Deployment

DOMAIN = "acme.example"
CONNECTED = {"account_id": "5c1f0e9a7b2d4c6e8f0a1b2c3d4e5f60", "domain": DOMAIN, "zone_id": "023e105f4ecef8ad",
             "worker_name": "ingram-email-default", "routing_status": "ready", "routing_enabled": True}


def email_status(**public: object) -> IntegrationStatus:
    return IntegrationStatus(kind="email", configured=True, status="connected", mode="webhook",
                             urls={"webhook_url": "https://ingram.example.com/v1/email/webhook/default"},
                             steps=["Create an inbox from a smith's Deployments tab (Create email inbox)."],
                             api_token={"set": True, "last4": "01XY"}, **{**CONNECTED, **public})


def deployment(kind: str = "email", *, status: str = "active", address: str | None = f"pa@{DOMAIN}",
               setup: dict[str, object] | None = None, owner_email: str | None = "dana@example.com") -> Deployment:
    return Deployment(id="dep_1", project_id="prj_1", kind=kind, target_type="smith", target_id="smi_1",
                      status=status, address=address, display_name="Dana's PA", owner_email=owner_email,
                      setup={"mode": "provision", "app_id": "rule_1"} if setup is None else setup)


def test_the_email_card_says_in_plain_words_that_routing_is_on_and_which_worker() -> None:  # CON-4
    card = card_of(EmailChannel, email_status())
    facts = {fact["label"]: fact["value"] for fact in card["facts"]}
    assert facts["Email Routing"] == f"On for {DOMAIN}"
    assert facts["Email Worker"].startswith("ingram-email-default, deployed on your account")
    assert facts["Domain"] == DOMAIN and facts["API token"] == "set, ends in …01XY"
    # The raw details the sentences replace are not shown again (a zone id is for the API).
    assert not {"Zone ID", "Worker name", "Routing status", "Routing enabled"} & set(facts)
    assert card["status"] == "Connected" and card["steps"]
    # Inboxes need nothing more than the connection: no "Dedicated apps" block asking for a Slack-style token.
    assert card["factory_block"] is False
    # The server hands the Worker its URL: nothing to paste at Cloudflare.
    assert card["setup_title"] == "Where mail arrives" and "Email Worker" in card["urls_heading"]
    assert card_of(TelegramChannel, IntegrationStatus(kind="telegram", configured=False))["urls_heading"] == (
        "To paste at Telegram")


def test_routing_that_cloudflare_reports_unready_says_where_to_look() -> None:
    facts = email_facts({**CONNECTED, "routing_status": "misconfigured"})
    assert facts[0]["value"].startswith(f"On for {DOMAIN} (Cloudflare reports it as misconfigured: check Email")
    off = email_facts({"domain": DOMAIN, "routing_enabled": False})
    assert off == [{"label": "Email Routing", "value": f"Off for {DOMAIN}: enable it in Cloudflare"}]
    assert card_of(EmailChannel, IntegrationStatus(kind="email", configured=False))["facts"] == []


def test_the_deployments_tab_offers_an_inbox_once_email_is_connected() -> None:
    assert address_factory(EmailChannel)
    assert not address_factory(SlackChannel) and not address_factory(TelegramChannel)
    assert app_factory(EmailChannel, {**CONNECTED}) == ""  # no configuration token to ask for
    offer = address_offer(EmailChannel, CONNECTED, connected=True)
    assert offer["label"] == "Create email inbox" and offer["button_id"] == "create-email-inbox"
    assert offer["mode"] == "provision" and offer["domain"] == DOMAIN and offer["connected"] == "yes"
    assert offer["via"] == f"an address on {DOMAIN}"
    hint = address_offer(EmailChannel, {}, connected=False)
    assert hint["connected"] == "" and hint["notice_id"] == "connect-email-first" and hint["domain"] == ""
    # The same keys as a link offer, so the tab's list of offers renders either.
    assert set(offer) >= {"kind", "name", "label", "via", "factory", "factory_error", "app_button_id"}


def test_an_inbox_row_is_renamed_in_place_and_says_what_removing_it_does() -> None:  # REN-1, DEP-6
    row = own_app_fields(deployment())
    assert row["renamable"] == "yes" and row["name_label"] == "From name"
    assert row["rename_label"] == "Change the From name" and row["rename_id"] == "rename-email-inbox"
    assert row["name_max"] == str(EmailChannel.max_display_name)
    assert row["remove_text"].startswith(f"Mail to pa@{DOMAIN} will no longer reach this smith")
    assert row["owner_email"] == "dana@example.com"
    assert OWN_APPS["email"].renamed.format(name="Dana", address=f"pa@{DOMAIN}") == (
        f"Mail from pa@{DOMAIN} now goes out as “Dana”")
    # A removed inbox, or an address bound by hand (no setup.mode provision), has no From name to change here.
    assert own_app_fields(deployment(status="revoked"))["renamable"] == ""
    assert own_app_fields(deployment(setup={}))["renamable"] == ""
    assert own_app_fields(deployment(owner_email=None))["owner_email"] == ""


def test_a_dedicated_slack_app_row_keeps_its_words_and_others_have_none() -> None:
    slack = own_app_fields(deployment("slack", status="pending", address=None, owner_email=None,
                                      setup={"mode": "provision", "app_id": "A0APP"}))
    assert slack["renamable"] == "yes" and slack["rename_id"] == "rename-slack-app" and slack["name_label"] == ""
    assert slack["rename_label"] == "Rename the Slack app"
    assert OWN_APPS["slack"].renamed.format(name="Pane", address="") == "Slack app renamed to “Pane”"
    telegram = own_app_fields(deployment("telegram", address="12345", setup={"mode": "start_token"}))
    assert telegram["renamable"] == "" and telegram["rename_label"] == ""
    assert telegram["remove_text"] == "The smith stops answering on this surface."


def test_the_dialog_sends_a_provision_setup_with_only_what_was_typed() -> None:
    body = inbox_body("smi_1", {"handle": "  PA ", "display_name": " Dana's PA ", "owner_email": "dana@example.com"})
    assert body.kind == "email" and body.target.type == "smith" and body.target.id == "smi_1"
    assert body.setup == {"mode": "provision", "handle": "pa", "display_name": "Dana's PA",
                          "owner_email": "dana@example.com"}
    bare = inbox_body("smi_1", {"handle": "pa", "display_name": "  ", "owner_email": ""})
    assert bare.setup == {"mode": "provision", "handle": "pa"}  # the smith's name, and no owner


def test_refusals_name_the_fields_by_their_labels() -> None:
    handle = Invalid("setup.handle: the part before the @: letters, digits, dots, dashes, _ and +",
                     code="invalid_setup", field="setup.handle")
    assert in_words(handle) == "Address: the part before the @: letters, digits, dots, dashes, _ and +"
    owner = Invalid("setup.owner_email: an email address", code="invalid_setup", field="setup.owner_email")
    assert in_words(owner) == "Owner's email: an email address"
    name = Invalid("display_name must be 1 to 100 characters (the provider's limit)", field="display_name")
    assert in_words(name) == "From name: must be 1 to 100 characters (the provider's limit)"
    not_connected = Conflict("connect email first (Settings → Integrations → Email)",
                             code="email_factory_not_configured")
    assert in_words(not_connected) == "connect email first (Settings → Integrations → Email)"
    with pytest.raises(ValidationError) as too_long:
        DeploymentUpdate(owner_email="x" * 400)
    assert in_words(too_long.value).startswith("Owner's email: String should have at most 320 characters")


def test_an_owner_typed_on_the_row_is_one_address_or_blank() -> None:  # ID-5
    assert owner_email_problem("dana@example.com") == ""
    assert owner_email_problem("  ") == ""  # blank clears the owner
    assert owner_email_problem("dana") == "Owner's email: one address, e.g. dana@example.com"
    assert owner_email_problem("a@b.example, c@d.example") != ""
