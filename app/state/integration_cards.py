"""Settings → Integrations' cards (CON-4), built from what each channel declares (``channels.base.Channel``:
``Put`` and ``put_help``, ``Secrets``, ``urls``, ``guide``) and its status (app/services/tenant_setup.py).

Reflex vars must be serialisable, so each card is a plain dict of strings, booleans and lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.services.tenant_setup import IntegrationStatus
from app.state.auth import describe
from app.state.deployment_rows import takes_factory_token
from app.state.slack_apps import FACTORY_DETAILS, factory_summary
from channels.base import Channel
from models.types import utcnow

Rows = list[dict[str, str]]
# How each receiving mode reads in the console.
MODE_LABELS = {"webhook": "webhook", "polling": "long polling (no public HTTPS URL)",
               "socket_mode": "Socket Mode (no public URL needed)"}
_WORDS = {"url": "URL", "oauth": "OAuth", "id": "ID"}
# A few details learnt at setup read better under the product's words than under the provider's keys.
DETAIL_LABELS = {"display_phone_number": "Phone number", "team": "Workspace", "team_id": "Workspace ID"}
# A detail that says credentials the channel renews itself could not be renewed: a warning, not a fact.
RENEWAL_ERROR = "credentials_error"
# Where a channel whose guide is an app manifest has its apps created (no declaration says so yet).
APP_CONSOLES = {"slack": "api.slack.com/apps"}
# Channels whose server gives the provider its URLs itself (email: the Email Worker it deploys holds them):
# the card's words over them, instead of "What to give …" and "To paste at …".
URLS_HEADINGS = {"email": ("Where mail arrives", "The Email Worker (deployed when you connect) posts each message to")}


def email_facts(public: Mapping[str, Any]) -> Rows:
    """Email on Cloudflare (CON-4) in plain words: Email Routing on the domain, and the Worker it routes to."""
    if "routing_enabled" not in public:  # not connected (yet)
        return []
    domain = str(public.get("domain") or "")
    status = str(public.get("routing_status") or "")
    routing = f"On for {domain}" if public.get("routing_enabled") else f"Off for {domain}: enable it in Cloudflare"
    if public.get("routing_enabled") and status not in ("", "ready"):
        routing += f" (Cloudflare reports it as {status}: check Email → Email Routing → Settings, DNS records)"
    facts = [{"label": "Email Routing", "value": routing}]
    if public.get("worker_name"):
        facts.append({"label": "Email Worker", "value": f"{public['worker_name']}, deployed on your account"})
    return facts


def linkedin_facts(public: Mapping[str, Any]) -> Rows:
    """LinkedIn's approval gate (LI-1, LI-3) in plain words: whose consent the server holds, and whether messages
    may move."""
    if "messaging_enabled" not in public:  # not connected (yet)
        return []
    member = str(public.get("consent_member") or "")
    renewal = str(public.get("access_token_expires_at") or "")
    if member:
        consent = f"Given by {member}" + (f"; its token is renewed before {_when(renewal)} UTC" if renewal else "")
    else:
        consent = ("Not given yet: make a consent link below and open it as an administrator of the Page "
                   "(or send it to one)")
    if public.get("messaging_enabled"):
        messaging = "On: members' messages to the Page reach your smiths, and their replies go back"
    elif member:
        messaging = ("Off, awaiting LinkedIn's approval: no message moves in or out. Switch it on below once "
                     "LinkedIn has approved your app for Page messages")
    else:
        messaging = ("Off, awaiting a Page admin's consent and LinkedIn's approval of your app for Page messages: "
                     "no message moves in or out")
    return [{"label": "Page admin consent", "value": consent}, {"label": "Messaging", "value": messaging}]


# Channels whose setup details read better as a few sentences: the details they replace, and the sentences.
PLAIN_DETAILS: dict[str, tuple[frozenset[str], Callable[[Mapping[str, Any]], Rows]]] = {
    "email": (frozenset({"zone_id", "worker_name", "routing_status", "routing_enabled"}), email_facts),
    "linkedin": (frozenset({"consent_member", "access_token_expires_at", "consent_link_expires_at"}), linkedin_facts),
}


def _when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _url_label(name: str) -> str:
    """``oauth_redirect_url`` -> "OAuth redirect URL", ``verify_token`` -> "Verify token"."""
    words = [_WORDS.get(word, word) for word in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def is_secret(cls: type[Channel], name: str) -> bool:
    return name in cls.Secrets.model_fields


def form_fields(cls: type[Channel]) -> list[str]:
    """The ``Put`` fields the console's form asks for: those ``put_help`` describes, in its order
    (the others, such as a hand-pasted bot token or a return URL, are for the API)."""
    return [name for name in cls.put_help if name in cls.Put.model_fields]


def _label(cls: type[Channel], name: str) -> str:
    label = cls.put_help.get(name, (name.replace("_", " ").capitalize(), ""))[0]
    return label.removesuffix(" (optional)")  # the form marks optional fields itself


def _hint(value: Any) -> str:
    """A secret's hint as the API shows it ({set, last4}) in words."""
    if not isinstance(value, Mapping) or not value.get("set"):
        return ""
    return f"set, ends in …{value['last4']}" if value.get("last4") else "set"


def setup_details(cls: type[Channel], status: IntegrationStatus) -> tuple[Rows, Rows]:
    """The public details the channel learnt or made at setup, as (facts to show, values to paste at the
    provider). A detail named like one of the channel's secrets is a shared secret the channel published
    on purpose because only the admin can hand it over (WhatsApp's verify token): it gets a copy button.
    The others are what the provider says about the account (WhatsApp's verified name); only text is
    shown (ids and flags are for the API), and the form's fields, the URLs, the headline and the app
    factory's details (its own block, ``factory_of``) have their own place."""
    public = status.model_extra or {}
    replaced, plain = PLAIN_DETAILS.get(cls.kind, (frozenset(), lambda _: []))
    facts: Rows = plain(public)
    handover: Rows = []
    for name, value in public.items():
        if (not isinstance(value, str) or not value or name in status.urls or name in cls.Put.model_fields
                or name == RENEWAL_ERROR or name in FACTORY_DETAILS or name in replaced):
            continue
        label = DETAIL_LABELS.get(name, _url_label(name))
        if name.endswith("_at"):
            value = f"{_when(value)} UTC"
        if name in cls.Secrets.model_fields:
            handover.append({"name": name, "label": label, "value": value, "copy_label": f"Copy {label.lower()}",
                             "id": f"{cls.kind}-{name.replace('_', '-')}"})
        elif name != "bot_username":
            facts.append({"label": label, "value": value})
    return facts, handover


def _manifest_intro(cls: type[Channel]) -> str:
    """One line above an app manifest: where to create the app from it, then which fields to fill."""
    required = [_label(cls, name) for name in form_fields(cls) if cls.Put.model_fields[name].is_required()]
    listed = ", ".join(required[:-1]) + f" and {required[-1]}" if len(required) > 1 else "".join(required)
    where = APP_CONSOLES.get(cls.kind, f"{cls.display_name}'s developer site")
    return f"Create the app at {where} → From a manifest, then paste the {listed} below."


def factory_of(cls: type[Channel], status: IntegrationStatus, now: datetime) -> dict[str, Any]:
    """The "Dedicated apps" block of a channel that mints a smith its own app with a configuration token
    (Slack's app factory, issue 17; not email, whose inboxes need nothing more than the connection): shown
    once connected; its token in plain words, and the workspace its apps are created in."""
    public = status.model_extra or {}
    team_id = str(public.get("factory_team_id") or "")
    workspace = next((row.name for row in status.installations if row.external_id == team_id and row.name), team_id)
    return {"factory_block": status.configured and takes_factory_token(cls),
            "factory_summary": factory_summary(public, now, failing=bool(public.get(RENEWAL_ERROR))),
            "factory_workspace": workspace}


def card_of(cls: type[Channel], status: IntegrationStatus, now: datetime | None = None) -> dict[str, Any]:
    """What one channel's card shows: its status, the URLs and guide to give the provider, and its form."""
    shown = status.model_dump(mode="json")
    fields = []
    for name in form_fields(cls):
        secret = is_secret(cls, name)
        current = shown.get(name)
        fields.append({
            "name": name, "id": f"{cls.kind}-{name.replace('_', '-')}", "label": _label(cls, name),
            "help": cls.put_help[name][1], "secret": secret,
            "optional": not cls.Put.model_fields[name].is_required(),
            # Public values are shown back so a change keeps them; secrets never are, only their hint.
            "value": "" if secret or not isinstance(current, str) else current,
            "placeholder": _hint(current) if secret else "",
        })
    facts = [{"label": field["label"], "value": _hint(shown.get(field["name"])) if field["secret"]
              else str(shown.get(field["name"]) or "")}
             for field in fields if shown.get(field["name"])]
    details, handover = setup_details(cls, status)
    manifest = status.guide.get("manifest")
    mode = status.mode or ""
    connected = status.configured and status.status in (None, "connected", "configured")
    failing = status.configured and status.status == "error"  # e.g. the provider refused the token since
    return {
        "kind": cls.kind, "title": cls.display_name, "card_id": f"{cls.kind}-card",
        "button_id": f"connect-{cls.kind}", "configured": status.configured,
        "status": "Connected" if connected else (status.status or "").capitalize() if status.configured
        else "Not connected",
        "status_color": "green" if connected else "red" if failing else "amber" if status.configured else "gray",
        "mode": mode, "mode_label": MODE_LABELS.get(mode, mode.replace("_", " ")),
        # Who the provider knows us as (Telegram's @bot), when the channel learnt it at setup.
        "headline": f"@{shown['bot_username']}" if shown.get("bot_username") else "",
        "facts": facts + details,
        "fields": fields,
        "urls": [{"name": name, "label": _url_label(name), "url": url} for name, url in status.urls.items()],
        # The folded block's title, and the heading over the URLs.
        "setup_title": URLS_HEADINGS.get(cls.kind, (f"What to give {cls.display_name}", ""))[0],
        "urls_heading": URLS_HEADINGS.get(cls.kind, ("", f"To paste at {cls.display_name}"))[1],
        "handover": handover,
        # What to paste at the provider stays unfolded once connected while the provider has yet to call
        # (WhatsApp: the callback URL and verify token go into Meta's dashboard after connecting).
        "setup_open": bool(handover) and status.last_delivery_at is None,
        "manifest": json.dumps(manifest, indent=2) if manifest else "",
        "manifest_intro": _manifest_intro(cls) if manifest else "",
        "steps": list(status.steps),
        "last_error": status.last_error or "",
        "renewal_error": str((status.model_extra or {}).get(RENEWAL_ERROR) or ""),
        **factory_of(cls, status, now or utcnow()),
        "last_delivery_at": _when(status.last_delivery_at),
        "per_installation": cls.per_installation,
        "installations": [{"name": row.name or row.external_id, "external_id": row.external_id,
                           "installer": row.installer or "", "installed_at": _when(row.created_at),
                           "status": row.status} for row in status.installations],
        "disconnect_title": f"Disconnect {cls.display_name}?",
        "disconnect_text": f"The credentials are deleted and {cls.display_name} deployments stop receiving messages "
                           "until you connect again."
                           + (" Every workspace's installation is forgotten too." if cls.per_installation else ""),
        "error": "",  # the form's refusal, set by the state
        **gate_of(cls, status),
    }


def gate_of(cls: type[Channel], status: IntegrationStatus) -> dict[str, Any]:
    """The "Messaging" block of a channel behind an approval gate (LinkedIn, LI-1/LI-3): a consent link to make,
    and the switch. The link itself is shown once, when made (the state adds it)."""
    public = status.model_extra or {}
    gated = status.configured and cls.Patch is not None and "messaging_enabled" in cls.Patch.model_fields
    return {"gate_block": gated, "messaging_on": bool(public.get("messaging_enabled")),
            "consent_given": bool(public.get("consent_member")),
            "consent_link": "", "consent_qr": "", "consent_link_expires": ""}


def put_values(cls: type[Channel], form: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for ``cls.Put``; an empty field is left out (optional) or missing (required)."""
    values = {name: str(form.get(name) or "").strip() for name in form_fields(cls)}
    return {name: value for name, value in values.items() if value}


def validation_message(cls: type[Channel], exc: ValidationError) -> str:
    """A form error that names the field by its label and says what to do."""
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    if not loc or str(loc[0]) not in cls.Put.model_fields:
        return describe(exc)
    label, kind = _label(cls, str(loc[0])), first.get("type", "")
    if kind == "missing":
        return f"{label} is required."
    if kind in ("string_pattern_mismatch", "string_too_short"):
        return f"{label} does not look right: copy it again, all of it."
    if kind == "string_too_long":
        return f"{label} is too long: copy only the value itself."
    return f"{label}: {str(first.get('msg', 'invalid value')).removeprefix('Value error, ')}"
