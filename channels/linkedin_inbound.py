"""What LinkedIn posts to the webhook (shared/reference/linkedin.md, "Webhooks").

DOCUMENTED (LinkedIn's webhook mechanics, any approved webhook use case): the validation ``GET
?challengeCode=…`` answered with ``hex HMAC-SHA256(key=client secret, msg=challengeCode)`` as JSON, and
``X-LI-Signature`` on every POST: ``hex HMAC-SHA256(key=client secret, msg="hmacsha256=" + raw body)``.

ASSUMED (our own invention, the reference's "Suggested fake-server contract"): the Page-message body
``{"type": "PAGE_MESSAGE", "organization", "from", "thread", "text", "createdAt", "id"?, "fromName"?}``.
LinkedIn documents no webhook for a Page's messages; replace ``parse_body`` when it grants one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from channels.errors import MalformedPayload
from channels.types import InboundMessage, RawRequest, Verdict

log = logging.getLogger("channels.linkedin")

KIND = "linkedin"
SIGNATURE_HEADER = "x-li-signature"
DELIVERY_HEADER = "x-li-delivery-id"  # seen in public code on some deliveries (unverified): a dedupe key if present
SIGNED_PREFIX = b"hmacsha256="
# LinkedIn sends a UUID. Nothing with "=" is ever answered: a challenge "hmacsha256=<body>" would make the
# answer a valid X-LI-Signature for <body> (the same key signs both), i.e. a forgery oracle.
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9-]{1,128}$")
HEX_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
ORGANIZATION_URN_RE = re.compile(r"^urn:li:organization:[0-9]{1,20}$")
MEMBER_URN_RE = re.compile(r"^urn:li:(person|member):[A-Za-z0-9_-]{1,64}$")
THREAD_RE = re.compile(r"^\S{1,200}$")  # ASSUMED: an opaque thread id (the conversation's address)
MESSAGE_TYPE = "PAGE_MESSAGE"  # ASSUMED
MAX_KEY = 200  # dedupe keys live in a 300-character column
MAX_NAME = 200


def signature(client_secret: str, body: bytes) -> str:
    """``X-LI-Signature`` of a POST body (documented; test vector in tests/channels/test_linkedin.py)."""
    return hmac.new(client_secret.encode(), SIGNED_PREFIX + body, hashlib.sha256).hexdigest()


def challenge_response(client_secret: str, challenge_code: str) -> str:
    """The validation answer's ``challengeResponse`` (documented)."""
    return hmac.new(client_secret.encode(), challenge_code.encode(), hashlib.sha256).hexdigest()


def verify_request(client_secret: str, raw: RawRequest) -> Verdict:
    """GET: the endpoint validation (answered as JSON); POST: the signature over the raw bytes, in
    constant time, before anything is parsed."""
    if not client_secret:
        return Verdict.reject("no client secret configured")
    if raw.method == "GET":
        code = raw.query.get("challengeCode")
        if not code or not CHALLENGE_RE.match(code):
            return Verdict.reject("missing or malformed challengeCode")
        answer = {"challengeCode": code, "challengeResponse": challenge_response(client_secret, code)}
        return Verdict.challenge(json.dumps(answer), content_type="application/json")
    if raw.method != "POST":
        return Verdict.reject(f"method {raw.method} not used by LinkedIn")
    got = (raw.header(SIGNATURE_HEADER) or "").strip()
    if not got:
        return Verdict.reject("missing X-LI-Signature")
    if not HEX_SHA256_RE.match(got):
        return Verdict.reject("X-LI-Signature is not a hex SHA-256")
    if not hmac.compare_digest(got.lower().encode(), signature(client_secret, raw.body).encode()):
        return Verdict.reject("signature mismatch")
    return Verdict.accept()


def parse_body(data: Any, headers: Mapping[str, str], *, page_urn: str) -> InboundMessage | None:
    """ASSUMED shape: one Page message, or None for what is not one (another event type, another Page,
    the Page's own message, a blank text). ``MalformedPayload`` for a broken message."""
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object")
    if data.get("type") != MESSAGE_TYPE:
        # LinkedIn's documented events (social actions on Page content) and anything else: acknowledged,
        # never answered; a failing endpoint would be blocked by LinkedIn.
        log.debug("linkedin: webhook event of type %r ignored", data.get("type"))
        return None
    organization, sender, thread = data.get("organization"), data.get("from"), data.get("thread")
    text, created_at, message_id = data.get("text"), data.get("createdAt"), data.get("id")
    if not isinstance(organization, str) or not ORGANIZATION_URN_RE.match(organization):
        raise MalformedPayload("a Page message without its organization urn")
    if not isinstance(sender, str) or not (MEMBER_URN_RE.match(sender) or ORGANIZATION_URN_RE.match(sender)):
        raise MalformedPayload("a Page message without a member urn in from")
    if not isinstance(thread, str) or not THREAD_RE.match(thread):
        raise MalformedPayload("a Page message without a thread id")
    if not isinstance(text, str):
        raise MalformedPayload("a Page message whose text is not a string")
    if created_at is not None and (isinstance(created_at, bool) or not isinstance(created_at, int)):
        raise MalformedPayload("createdAt is not epoch milliseconds")
    if message_id is not None and (not isinstance(message_id, str | int) or isinstance(message_id, bool)):
        raise MalformedPayload("id is not a string or a number")
    if page_urn and organization != page_urn:
        log.warning("linkedin: message for %s, not this integration's Page %s; ignored", organization, page_urn)
        return None
    if sender == organization:
        return None  # the Page's own message coming back: answering it would loop
    if not MEMBER_URN_RE.match(sender):
        log.info("linkedin: message from %s (not a member) ignored", sender)
        return None
    if not text.strip():
        log.info("linkedin: blank message from %s in %s ignored", sender, thread)
        return None
    name = data.get("fromName")
    display = name.strip()[:MAX_NAME] if isinstance(name, str) and name.strip() else member_label(sender)
    return InboundMessage(
        dedupe_key=_dedupe_key(message_id, headers.get(DELIVERY_HEADER), thread, created_at, sender, data),
        address=thread, thread=None, sender_id=f"{KIND}:{sender}", sender_display=display, text=text,
        start_payload=None, is_direct=True, provider_message_id=None if message_id is None else str(message_id) or None)


def member_label(urn: str) -> str:
    """What is shown for a member who sent no name: never the bare identity (ID-2 keeps the two apart)."""
    return f"LinkedIn member {urn.rsplit(':', 1)[-1]}"


def _dedupe_key(message_id: Any, delivery_id: str | None, thread: str, created_at: int | None, sender: str,
                data: dict[str, Any]) -> str:
    if message_id is not None and str(message_id):
        key = f"id:{message_id}"
    elif delivery_id:
        key = f"delivery:{delivery_id}"
    elif created_at is not None:
        key = f"msg:{thread}:{created_at}:{sender}"
    else:  # nothing names the message: the same body delivered again is the same message
        key = "body:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
