"""What Meta posts to a WhatsApp webhook, as the product's inbound values (reference/whatsapp.md). Pure
functions, no I/O.

One POST can batch several entries, each with several changes, each carrying ``messages`` (with their
senders' ``contacts``) or ``statuses``; every one of them is read. Text and reply-button taps become
messages and actions; delivery statuses become ``ProviderEvent``s; anything else (images, stickers,
reactions, system notices, echoes of the business's own messages) is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from channels.errors import MalformedPayload
from channels.types import DELIVERY_STATUS, Inbound, InboundAction, InboundMessage, ProviderEvent
from channels.whatsapp_graph import status_failure

log = logging.getLogger("channels.whatsapp")

KIND = "whatsapp"
OBJECT = "whatsapp_business_account"
# A chip is a reply button whose id is "chip:<n>": its tap reads as the person typing the label (CHIP-3).
CHIP_PREFIX = "chip:"
# The wa.me link's prefilled text. The person can edit it before sending, so the code is looked for after
# the marker anywhere in the message, or as the whole message.
GREETING = "Hi! My connect code is {code}"
CODE_MARKER = "connect code"
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")  # the start tokens app.services.deployments mints (32 chars)
# A word on its own: after a space, a colon or an opening quote, before a space or punctuation (not in a URL).
_CODE_WORD = re.compile(r"""(?<![^\s:"'(])([A-Za-z0-9_-]{22,64})(?![^\s.,!?;:)"'])""")
STATUSES = frozenset({"sent", "delivered", "read", "failed", "played"})
# Media whose caption is read as the message (the file is not): type -> what it is, for the model.
MEDIA = {"image": ("an image", "images"), "video": ("a video", "videos"), "document": ("a document", "documents")}
# Messages the product cannot read: the person is told so (what it can read) rather than met with silence.
UNREADABLE = {"sticker": "stickers", "audio": "voice or audio messages", "location": "locations",
              "contacts": "contact cards", "unsupported": "this kind of message", "order": "orders"}
MAX_KEY = 200  # dedupe keys are stored in a 300-character column


def connect_code(text: str) -> str | None:
    """The connect code in a person's message: the word after "connect code" (the greeting the wa.me link
    prefills), or the whole message when it is nothing but a code. Ordinary text never looks like one, so
    a bound person's messages are not mistaken for a (failed) binding."""
    whole = text.strip()
    if CODE_RE.match(whole) and not whole.isalpha():  # a long plain word alone is a word, not a code
        return whole
    at = text.lower().find(CODE_MARKER)
    if at < 0:
        return None
    found = _CODE_WORD.search(text, at + len(CODE_MARKER))
    return found.group(1) if found else None


def parse_body(data: Any, *, phone_number_id: str, business_number: str) -> list[Inbound]:
    """A webhook body (already JSON) as inbound items, in the order Meta listed them."""
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object")
    if data.get("object") != OBJECT:
        log.debug("whatsapp: webhook for object %r ignored", data.get("object"))
        return []
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise MalformedPayload("entry is not a list")
    items: list[Inbound] = []
    for entry in entries:
        changes = entry.get("changes", []) if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise MalformedPayload("entry without a list of changes")
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise MalformedPayload("change without a value object")
            if change.get("field") != "messages":
                continue  # smb_message_echoes (our own messages), account and quality updates, templates...
            items.extend(_value(change["value"], phone_number_id, business_number))
    return items


def _value(value: dict[str, Any], phone_number_id: str, business_number: str) -> list[Inbound]:
    number_id = _obj(value, "metadata").get("phone_number_id")
    if not isinstance(number_id, str) or not number_id:
        raise MalformedPayload("a messages change without its metadata.phone_number_id")
    if phone_number_id and number_id != phone_number_id:
        # Answered 200 all the same: Meta disables a webhook that keeps failing.
        log.warning("whatsapp: webhook for phone number id %r, not this integration's; ignored", number_id)
        return []
    messages, statuses = _list(value, "messages"), _list(value, "statuses")
    names = _names(_list(value, "contacts"))
    items: list[Inbound] = []
    for message in messages:
        item = _message(message, names, business_number)
        if item is not None:
            items.append(item)
    items.extend(_status(status, number_id) for status in statuses)
    return items


def _list(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = value.get(key, [])
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise MalformedPayload(f"{key} is not a list of objects")
    return found


def _names(contacts: list[dict[str, Any]]) -> dict[str, str]:
    """wa_id -> the name the person set in their WhatsApp profile (shown, never the identity: ID-2)."""
    names: dict[str, str] = {}
    for contact in contacts:
        profile = _obj(contact, "profile")
        if contact.get("wa_id") and profile.get("name"):
            names[str(contact["wa_id"])] = str(profile["name"])
    return names


def _message(message: dict[str, Any], names: Mapping[str, str], business_number: str) -> Inbound | None:
    wamid, sender, kind = message.get("id"), message.get("from"), message.get("type")
    if not isinstance(wamid, str) or not wamid or not isinstance(sender, str) or not sender:
        raise MalformedPayload("message without an id or a sender")
    if business_number and sender == business_number:
        return None  # the business's own number: answering it could loop
    display = names.get(sender) or f"+{sender}"
    key = _key(wamid)

    def said(text: str, start_payload: str | None = None) -> InboundMessage:
        return InboundMessage(dedupe_key=key, address=sender, thread=None, sender_id=f"{KIND}:{sender}",
                              sender_display=display, text=text, start_payload=start_payload, is_direct=True,
                              provider_message_id=wamid)

    def unreadable(what: str) -> InboundMessage:
        return InboundMessage(dedupe_key=key, address=sender, thread=None, sender_id=f"{KIND}:{sender}",
                              sender_display=display, text="", start_payload=None, is_direct=True,
                              provider_message_id=wamid, unreadable=what)

    if kind == "text":
        body = str(_obj(message, "text").get("body") or "")
        return said(body, connect_code(body)) if body.strip() else None
    if kind == "interactive":
        interactive = _obj(message, "interactive")
        reply = interactive.get(str(interactive.get("type")))
        if interactive.get("type") not in ("button_reply", "list_reply") or not isinstance(reply, dict):
            return None  # a Flow's nfm_reply and the like: nothing the product reads yet
        button_id, title = str(reply.get("id") or ""), str(reply.get("title") or "")
        if button_id.startswith(CHIP_PREFIX):
            return said(title) if title.strip() else None
        context = _obj(message, "context")
        return InboundAction(dedupe_key=key, address=sender, thread=None, sender_id=f"{KIND}:{sender}",
                             sender_display=display, token=button_id,  # APR-3: opaque, looked up
                             provider_message_id=context.get("id"), action_id=wamid)
    if kind == "button":  # a template's quick-reply button: its label, as if typed
        label = str(_obj(message, "button").get("text") or "")
        return said(label) if label.strip() else None
    if kind in MEDIA:
        caption = str(_obj(message, str(kind)).get("caption") or "").strip()
        if caption:  # the words are read; the file itself is not (yet) given to the model
            return said(f"[{MEDIA[kind][0]} attached, which I cannot see] {caption}")
        return unreadable(MEDIA[kind][1])
    if kind in UNREADABLE:
        return unreadable(UNREADABLE[kind])
    log.debug("whatsapp: %s message %s not read (reactions, system notices and the like need no answer)",
              kind, wamid)
    return None


def _status(status: dict[str, Any], phone_number_id: str) -> ProviderEvent:
    """A delivery status of a message we sent (sent, delivered, read, failed), deduplicated on (id, status).
    A failure carries Graph's code, title and details as the reason the delivery shows."""
    wamid, state = status.get("id"), status.get("status")
    if not isinstance(wamid, str) or not wamid or state not in STATUSES:
        raise MalformedPayload("status without an id or a known status")
    error = status_failure(status.get("errors")) if state == "failed" else None
    return ProviderEvent(dedupe_key=_key(f"status:{wamid}:{state}"), type=DELIVERY_STATUS,
                         installation=phone_number_id,
                         data={"provider_message_id": wamid, "status": "read" if state == "played" else state,
                               "at": _when(status.get("timestamp")), "error": error,
                               "recipient": status.get("recipient_id")})


def _when(timestamp: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(timestamp)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _obj(container: dict[str, Any], key: str) -> dict[str, Any]:
    found = container.get(key)
    return found if isinstance(found, dict) else {}


def _key(value: str) -> str:
    if len(value) <= MAX_KEY:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
