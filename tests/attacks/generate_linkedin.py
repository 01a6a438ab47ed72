"""LinkedIn's attacks (channels/linkedin_inbound.py), beside the shared ones of generate.py.

Its signature is documented: ``X-LI-Signature`` is the hex HMAC-SHA256 of ``"hmacsha256=" + raw body`` keyed
with the app's client secret, with no label and no time in it; its validation GET carries a ``challengeCode``
that is answered with an HMAC of it, so a challenge that could make that answer a valid signature
(``hmacsha256=<body>``) is refused. The Page-message body is our labelled assumption (``PAGE_MESSAGE``); every
body here is fixed, so the generator rewrites the same bytes every time.
"""

from __future__ import annotations

from typing import TypeVar

from tests.attacks.generate import Corpus, Profile, b64, common, dumps, malformed, replays_with_previous_key
from tests.fakes import linkedin as li

CREATED = 1_767_225_600_000  # 2026-01-01 in epoch milliseconds: a fixed "captured earlier" time
MALLORY = "urn:li:person:MalloryX0aB1c"
T = TypeVar("T", str, bytes)


def li_message(serial: int, text: str = "hello", *, sender: str = MALLORY, thread: str = "thr_atk-0001",
               organization: str = li.PAGE_URN, **extra: object) -> str:
    """A member's message to the Page (ASSUMED shape, channels/linkedin_inbound.py)."""
    return dumps({"type": "PAGE_MESSAGE", "organization": organization, "from": sender, "fromName": "Mallory",
                  "thread": thread, "text": text, "createdAt": CREATED + serial, "id": f"msg_atk{serial:06d}",
                  **extra})


def linkedin() -> Corpus:
    c = Corpus(Profile("linkedin", "li_sha256", li_message, not_applicable={
        "stale_signature": "X-LI-Signature covers the raw body and no time, so a signature cannot be stale; a "
                           "request resent under the same client secret is a redelivery, stored once by its "
                           "message id. Requests captured before the client secret was rotated are in replay."}))
    missing(c)
    forged(c)
    tampered(c)
    replays(c)
    swaps(c)
    malformed(c, shapes())
    unstorable(c)
    challenges(c)
    paths(c)
    common(c)
    return c


def missing(c: Corpus) -> None:
    c.add("missing_signature", "no X-LI-Signature")
    c.add("missing_signature", "an empty X-LI-Signature", sign=c.sign(mutate=["empty"]))
    c.add("missing_signature", "X-LI-Signature of spaces", sign=c.sign(mutate=["truncate:0", "append:   "]))
    for header in ("X-LI-Signature-256", "X-Hub-Signature-256", "X-LinkedIn-Signature", "Signature"):
        c.add("missing_signature", f"the right signature under {header}", sign=c.sign(header=header))
    c.add("missing_signature", "a POST with a challengeCode in the query and no signature",
          query=[["challengeCode", "3b6e1d6e-1c52-4d2c-9a55-1b1a0b6f2f10"]])


def forged(c: Corpus) -> None:
    c.add("forged_signature", "HMAC keyed with the client id", sign=c.sign(key="client_id"))
    c.add("forged_signature", "HMAC keyed with the Page admin's access token", sign=c.sign(key="access_token"))
    c.add("forged_signature", "HMAC of the body alone, without LinkedIn's hmacsha256= prefix",
          sign=c.sign(signed_prefix=""))
    for prefix in ("hmacsha256:", "HMACSHA256=", "sha256=", "hmacsha256= "):
        c.add("forged_signature", f"HMAC of {prefix!r} + body", sign=c.sign(signed_prefix=prefix))
    for construction, note in (("plain", "SHA-256 of hmacsha256= + body, no key"),
                               ("prefix", "SHA-256(secret + hmacsha256= + body)")):
        c.add("forged_signature", note, sign=c.sign(construction=construction))
    for digest in ("sha1", "md5", "sha512"):
        c.add("forged_signature", f"HMAC-{digest.upper()} in place of HMAC-SHA256", sign=c.sign(digest=digest))
    c.add("forged_signature", "the right HMAC, base64 in place of hex", sign=c.sign(encoding="base64"))
    # Upper-case hex of the right signature is genuine (hex is read in either case): only wrong ones here.
    c.add("forged_signature", "an unknown key's HMAC, hex upper-cased",
          sign=c.sign(key="literal:kX9vQ2mL7pR4tY8wZ3nB6cD1fG5hJ0sA", mutate=["upper"]))
    c.add("forged_signature", "the HMAC of the body alone, hex upper-cased", sign=c.sign(signed_prefix="",
                                                                                       mutate=["upper"]))
    c.add("forged_signature", "the client id's HMAC, hex upper-cased", sign=c.sign(key="client_id", mutate=["upper"]))
    c.add("forged_signature", "Meta's X-Hub-Signature-256 keyed with the client secret", sign={"recipe": "meta_sha256"})
    c.add("forged_signature", "Slack's v0 signature keyed with the client secret", sign={"recipe": "slack_v0"})
    c.add("forged_signature", "Telegram's secret header carrying the client secret",
          sign={"recipe": "telegram_secret_token"})


def tampered(c: Corpus) -> None:
    steps = [*(([f"replace_at:{i}"], f"hex digit {i} changed") for i in (0, 1, 7, 15, 31, 32, 47, 62, -1)),
             (["prepend:hmacsha256="], "labelled hmacsha256="), (["prepend:sha256="], "labelled sha256="),
             (["double"], "twice"), (["append:0"], "a digit appended"), (["prepend:0"], "a digit prepended"),
             (["insert_at:20: "], "a space inside"), (["set_at:20:\u00e9"], "a Latin-1 byte inside"),
             (["reverse"], "reversed"), (["set_at:10:g"], "a letter that is no hex digit inside"),
             (["append:,0000"], "followed by a second value"),
             (["upper", "replace_at:5"], "upper-cased, hex digit 5 changed"),
             (["upper", "prepend:hmacsha256="], "upper-cased and labelled hmacsha256="),
             (["prepend:HMACSHA256="], "labelled HMACSHA256="), (["insert_at:32:\t"], "a tab inside"),
             (["upper_from:32", "replace_at:-1"], "half upper-cased, the last digit changed")]
    for mutations, note in steps:
        c.add("tampered_signature", f"the signature {note}", sign=c.sign(mutate=mutations))
    for n in (1, 16, 32, 63, -1, -2):
        c.add("truncated_signature", f"the signature cut to [:{n}]", sign=c.sign(mutate=[f"truncate:{n}"]))
    c.add("truncated_signature", "the signature without its first hex digit", sign=c.sign(mutate=["drop_at:0"]))
    c.add("truncated_signature", "the signature upper-cased and cut to [:63]", sign=c.sign(mutate=["upper",
                                                                                                "truncate:63"]))


def replays(c: Corpus) -> None:
    bodies = [(li_message(500 + i, text), f"a captured message {text!r}")
              for i, text in enumerate(("hello", "yes", "please wire the money", "/remember plan = launch"))]
    bodies.append((li_message(510, "hello", sender=li.MEMBER_URN, thread=li.THREAD), "a captured genuine member's"))
    bodies.append((dumps({"type": "ORGANIZATION_SOCIAL_ACTION", "organization": li.PAGE_URN}), "a captured event"))
    replays_with_previous_key(c, bodies)
    c.add("replay", "the captured body, signed with the previous key without LinkedIn's prefix",
          body_from="captured", sign=c.sign(key="previous", signed_prefix=""))
    c.add("replay", "the captured body, the previous key's signature upper-cased", body_from="captured",
          sign=c.sign(key="previous", mutate=["upper"]))
    c.add("replay", "the captured body, the previous key's signature labelled hmacsha256=", body_from="captured",
          sign=c.sign(key="previous", mutate=["prepend:hmacsha256="]))


def swaps(c: Corpus) -> None:
    original = li_message(600)
    variants = [(li_message(600, "transfer the money"), "the text changed"),
                (li_message(601), "the message id changed"),
                (li_message(600, sender=li.ADMIN_URN), "the sender changed"),
                (li_message(600, thread="thr_other"), "the thread changed"),
                (li_message(600, organization=li.OTHER_PAGE_URN), "the Page changed"),
                (original + " ", "a space appended"), (original + "\n", "a newline appended"),
                (original.replace(":", ": "), "re-serialised with spaces"), (original[:-1], "the last byte dropped"),
                (original + original, "the body twice"), ("", "an empty body"),
                (li_message(600, "h\u00e9llo"), "a non-ASCII text"),
                (original.replace("hello", "Hello"), "one letter's case changed")]
    for body, note in variants:
        c.add("body_swap", f"a valid signature of a message, sent over a body with {note}", body=body,
              sign=c.sign(signed_body=original))
    c.add("body_swap", "the captured request's signature over another body", body=li_message(602),
          headers_from="captured", content_type=None)
    c.add("body_swap", "a valid signature of a message, upper-cased, over another message",
          body=li_message(600, "transfer the money"), sign=c.sign(signed_body=original, mutate=["upper"]))


def shapes() -> list[tuple[str, str]]:
    """Page messages broken in one field each, correctly signed: 400 (parse_body refuses them)."""
    base = {"type": "PAGE_MESSAGE", "organization": li.PAGE_URN, "from": MALLORY, "thread": "thr_atk-0700",
            "text": "hi", "createdAt": CREATED, "id": "msg_atk000700"}

    def without(field: str) -> str:
        return dumps({k: v for k, v in base.items() if k != field})

    def with_(**fields: object) -> str:
        return dumps({**base, **fields})

    return [(without("organization"), "a Page message without organization"),
            (with_(organization="urn:li:company:1"), "an organization that is not an organization urn"),
            (with_(organization=2414183), "the organization as a number"),
            (without("from"), "a Page message without from"), (with_(**{"from": "Mallory"}), "from that is no urn"),
            (with_(**{"from": ["urn:li:person:a"]}), "from as a list"),
            (without("thread"), "a Page message without thread"), (with_(thread="two words"), "a thread with a space"),
            (with_(thread=""), "an empty thread"), (with_(thread="t" * 201), "a 201-character thread"),
            (with_(text=42), "text as a number"), (with_(text=None), "text null"), (without("text"), "no text"),
            (with_(createdAt="yesterday"), "createdAt as a string"), (with_(createdAt=True), "createdAt true"),
            (with_(id=["x"]), "id as a list"), (with_(id=True), "id true")]


def unstorable(c: Corpus) -> None:
    """Signed messages holding what no text column can store (a NUL, half a surrogate pair) in fields other
    than the text generate.malformed covers: 400 malformed_payload, never a 500 or a stored row."""
    signed = c.sign()
    message = li_message(900, "hi")
    escaped = [(_swap(message, '"thr_atk-0001"', '"thr\\u0000x"'), "a thread holding an escaped NUL"),
               (_swap(message, '"Mallory"', '"Mall\\u0000ory"'), "a fromName holding an escaped NUL"),
               (_swap(message, '"msg_atk000900"', '"msg\\u0000"'), "a message id holding an escaped NUL"),
               (_swap(message, '"fromName"', '"from\\u0000Name"'), "a key holding an escaped NUL"),
               (_swap(message, '"Mallory"', '"\\uD800"'), "a fromName of a lone high surrogate, upper-case hex"),
               (_swap(message, '"hi"', '"\\uDE00\\uD83D"'), "a text of a surrogate pair reversed"),
               (_swap(message, '"hi"', '"\\udc00 tail"'), "a text opening with a lone low surrogate"),
               (_swap(message, '"thr_atk-0001"', '"thr\\ud800"'), "a thread ending in a lone surrogate")]
    for body, note in escaped:
        c.add("malformed_json", note, expect=400, body=body, sign=signed)
    raw = message.encode()
    for data, note in ((_swap(raw, b'"hi"', b'"h\x00i"'), "a raw NUL byte inside the text"),
                       (raw + b"\x00", "a NUL byte after the object")):
        c.add("malformed_json", note, expect=400, body_b64=b64(data), sign=signed)
    # Half a surrogate pair as raw UTF-8 bytes (ED A0 80 and the like; strict UTF-8 has no such sequence): found
    # answering 500 on 2026-12-04, now refused by channels.payloads.parse_json's strict decoding.
    for data, note in ((_swap(raw, b'"hi"', b'"h\xed\xa0\x80i"'), "a high surrogate as UTF-8 bytes in the text"),
                       (_swap(raw, b'"hi"', b'"\xed\xbf\xbf"'), "a low surrogate as UTF-8 bytes, the whole text"),
                       (_swap(raw, b'"Mallory"', b'"M\xed\xa0\xbdy"'), "a high surrogate as UTF-8 bytes in fromName")):
        c.add("malformed_json", note, expect=400, body_b64=b64(data), sign=signed)


def _swap(value: T, old: T, new: T) -> T:
    """``value`` with ``old`` replaced once; a fixture that no longer holds ``old`` is an error, not a no-op."""
    if old not in value:
        raise ValueError(f"{old!r} is not in {value!r}")
    return value.replace(old, new, 1)


def paths(c: Corpus) -> None:
    """Near misses of the webhook's path, correctly signed: no route, 404."""
    for path, note in (("/v1/linkedin/webhooks/{tenant}", "webhooks"), ("/v1/linkedin/webhook", "no tenant"),
                       ("/v1/linkedin/webhook/{tenant}/extra", "a segment after the tenant"),
                       ("/v1/linkedin/{tenant}", "no webhook segment")):
        c.add("unknown_kind", f"correctly signed, to a path with {note}", expect=404, code=None, path=path,
              sign=c.sign())


def challenges(c: Corpus) -> None:
    """The validation GET: only a plain challenge code is answered (with its HMAC); everything else is 403 and
    never echoed."""
    def challenge(value: str) -> dict[str, object]:
        return {"recipe": "li_challenge", "key": f"literal:{value}"}

    body = li_message(800)
    cases = [(challenge(f"hmacsha256={body}"), "a challenge that would make the answer a signature of a body"),
             (challenge("hmacsha256="), "the signature prefix alone"),
             (challenge("a" * 129), "a 129-character challenge"), (challenge("b" * 4000), "a 4000-character challenge"),
             ({"recipe": "li_challenge", "key": "literal:x", "mutate": ["empty"]}, "an empty challengeCode"),
             (challenge("two words"), "a challenge with a space"),
             (challenge("3b6e1d6e=1c52"), "a challenge with ="), (challenge("<script>alert(1)</script>"), "markup"),
             (challenge("\u00e9t\u00e9"), "non-ASCII letters"), (challenge("a/b"), "a slash"),
             (challenge("%00"), "a percent-encoded NUL"), (challenge("{}"), "braces"),
             ({"recipe": "li_challenge", "key": "literal:3b6e1d6e-1c52", "param": "challengecode"},
              "a good code under challengecode (lower case)"),
             ({"recipe": "li_challenge", "key": "literal:3b6e1d6e-1c52", "param": "challenge"},
              "a good code under challenge"),
             (None, "no challengeCode at all")]
    for sign, note in cases:
        fields = {"sign": sign} if sign else {}
        c.add("handshake", note, method="GET", expect=403, **fields)
    for tenant in ("nobody", "Default"):
        c.add("handshake", f"a good challenge to the tenant {tenant!r}", method="GET", expect=403,
              path=c.path.replace("{tenant}", tenant), sign=challenge("3b6e1d6e-1c52-4d2c-9a55-1b1a0b6f2f10"))
