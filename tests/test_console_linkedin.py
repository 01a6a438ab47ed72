"""What the LinkedIn card says (issue 18, LI-1/LI-3), from its pure helpers: the approval gate in plain words
at each step (connected, consented, switched on), the Messaging block, and the form's fields."""

from __future__ import annotations

from app.services.tenant_setup import IntegrationStatus
from app.state.integration_cards import card_of, form_fields
from channels.email import EmailChannel
from channels.linkedin import LinkedInChannel

ADMIN = "urn:li:person:AdminX7kQ2p"


def linkedin_status(**public: object) -> IntegrationStatus:
    shown = {"client_id": "86fakeLinkedIn01", "page_urn": "urn:li:organization:2414183", "messaging_enabled": False,
             "consent_member": "", "api_version": "202607", **public}
    return IntegrationStatus(kind="linkedin", configured=True, status="connected", mode="webhook",
                             urls={"webhook_url": "https://ingram.example/v1/linkedin/webhook/default",
                                   "oauth_redirect_url": "https://ingram.example/v1/linkedin/oauth/callback"},
                             client_secret={"set": True, "last4": "Zg=="}, **shown)


def facts_of(card: dict[str, object]) -> dict[str, str]:
    return {fact["label"]: fact["value"] for fact in card["facts"]}  # type: ignore[attr-defined]


def test_before_consent_the_card_says_what_comes_first() -> None:  # LI-1, LI-3
    card = card_of(LinkedInChannel, linkedin_status())
    facts = facts_of(card)
    assert facts["Page admin consent"].startswith("Not given yet: make a consent link below")
    assert facts["Messaging"].startswith("Off, awaiting a Page admin's consent and LinkedIn's approval")
    assert card["gate_block"] is True and card["consent_given"] is False and card["messaging_on"] is False
    assert card["consent_link"] == "" and card["status"] == "Connected"
    assert "Consent member" not in facts  # replaced by the sentence


def test_after_consent_only_linkedins_approval_is_missing() -> None:
    card = card_of(LinkedInChannel, linkedin_status(consent_member=ADMIN,
                                                    access_token_expires_at="2027-02-02T10:00:00+00:00"))
    facts = facts_of(card)
    assert facts["Page admin consent"] == f"Given by {ADMIN}; its token is renewed before 2027-02-02 10:00 UTC"
    assert facts["Messaging"].startswith("Off, awaiting LinkedIn's approval: no message moves in or out")
    assert card["consent_given"] is True and card["messaging_on"] is False
    on = card_of(LinkedInChannel, linkedin_status(consent_member=ADMIN, messaging_enabled=True))
    assert facts_of(on)["Messaging"].startswith("On: members' messages to the Page reach your smiths")
    assert on["messaging_on"] is True


def test_the_form_asks_for_the_app_and_page_and_the_switch_is_not_a_form_field() -> None:
    assert form_fields(LinkedInChannel) == ["client_id", "client_secret", "page_urn"]
    card = card_of(LinkedInChannel, IntegrationStatus(kind="linkedin", configured=False))
    assert card["gate_block"] is False and card["status"] == "Not connected"  # nothing to switch before connecting
    assert card_of(EmailChannel, IntegrationStatus(kind="email", configured=True))["gate_block"] is False
