"""Signing recipes: how a corpus entry is signed, evaluated when it is sent.

A corpus stores instructions, never a signature: Slack's signature covers the current time, and every
key (a webhook secret the server generated, an app secret rotated during set-up) is only known at run
time. Each recipe is the provider's real algorithm (``hmac``), fed a key named by the entry and bent by
the entry's mutations, so "the secret with one character changed" or "signed 301 s ago" is said once,
in data, and computed fresh on every run. README.md lists every recipe, option and mutation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

Pairs = list[tuple[str, str]]


class RecipeError(ValueError):
    """An entry that cannot be evaluated (unknown recipe, key or mutation, or a mutation that would
    leave its value unchanged and so test nothing)."""


# -- mutations ------------------------------------------------------------------------------------

def _next_in(alphabet: str, char: str) -> str:
    return alphabet[(alphabet.index(char) + 1) % len(alphabet)]


def _different(char: str) -> str:
    """Another character of the same class: a change that keeps the value's shape."""
    for alphabet in (string.digits, string.ascii_lowercase, string.ascii_uppercase):
        if char in alphabet:
            return _next_in(alphabet, char)
    return {"-": "_", "_": "-", "=": "A"}.get(char, "x")


def _letter_index(value: str, n: int) -> int:
    letters = [i for i, c in enumerate(value) if c.isalpha()]
    if not -len(letters) <= n < len(letters):
        raise RecipeError(f"swapcase_letter:{n}: the value has only {len(letters)} letters")
    return letters[n]


def _index(value: str, i: int) -> int:
    if not -len(value) <= i < len(value):
        raise RecipeError(f"index {i} is outside a value of {len(value)} characters")
    return i % len(value)


def _at(value: str, i: int, new: str) -> str:
    at = _index(value, i)
    return value[:at] + new + value[at + 1:]


def _replace(value: str, args: str) -> str:
    old, _, new = args.partition(":")
    if old not in value:
        raise RecipeError(f"replace: {old!r} is not in the value")
    return value.replace(old, new, 1)


def _truncate(value: str, n: int) -> str:
    return value[:n]


# name -> function(value, argument); the argument is "" for mutations that take none
_MUTATIONS: dict[str, Callable[[str, str], str]] = {
    "swapcase": lambda v, _: v.swapcase(),
    "upper": lambda v, _: v.upper(),
    "lower": lambda v, _: v.lower(),
    "reverse": lambda v, _: v[::-1],
    "double": lambda v, _: v + v,
    "empty": lambda v, _: "",
    "b64": lambda v, _: base64.b64encode(v.encode()).decode(),
    "hex": lambda v, _: v.encode().hex(),
    "sha256hex": lambda v, _: hashlib.sha256(v.encode()).hexdigest(),
    "swapcase_letter": lambda v, a: _at(v, _letter_index(v, int(a)), v[_letter_index(v, int(a))].swapcase()),
    "replace_at": lambda v, a: _at(v, int(a), _different(v[_index(v, int(a))])),
    "set_at": lambda v, a: _at(v, int(a.partition(":")[0]), a.partition(":")[2]),
    "insert_at": lambda v, a: v[:_index(v, int(a.partition(":")[0]))] + a.partition(":")[2]
    + v[_index(v, int(a.partition(":")[0])):],
    "drop_at": lambda v, a: _at(v, int(a), ""),
    "truncate": lambda v, a: _truncate(v, int(a)),
    "drop_first": lambda v, a: v[int(a):],
    "append": lambda v, a: v + a,
    "prepend": lambda v, a: a + v,
    "replace": _replace,
    "upper_from": lambda v, a: v[:int(a)] + v[int(a):].upper(),
}
MUTATIONS = frozenset(_MUTATIONS)


def mutate(value: str, steps: Sequence[str]) -> str:
    """Apply ``steps`` (``name`` or ``name:argument``) in order. Each must change the value: a step
    that does not (upper-casing a value with no lower-case letter) would send the genuine key."""
    for step in steps:
        name, _, argument = step.partition(":")
        if name not in _MUTATIONS:
            raise RecipeError(f"unknown mutation {name!r}")
        changed = _MUTATIONS[name](value, argument)
        if changed == value:
            raise RecipeError(f"mutation {step!r} leaves the value unchanged")
        value = changed
    return value


# -- recipes --------------------------------------------------------------------------------------

def resolve_key(spec: Mapping[str, Any], keys: Mapping[str, str]) -> str:
    """The key an entry names (``current``, ``previous``, a kit's other secrets, or ``literal:…``),
    with its ``key_mutate`` steps applied."""
    name = str(spec.get("key", "current"))
    if name.startswith("literal:"):
        key = name.removeprefix("literal:")
    elif name in keys:
        key = keys[name]
    else:
        raise RecipeError(f"unknown key {name!r}; this kit has {sorted(keys)}")
    return mutate(key, spec.get("key_mutate", []))


def _digest(name: str) -> Callable[..., Any]:
    if name not in ("sha256", "sha1", "md5", "sha512"):
        raise RecipeError(f"unknown digest {name!r}")
    return getattr(hashlib, name)


def telegram_secret_token(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Telegram's X-Telegram-Bot-Api-Secret-Token: the secret itself, in a header (or, as attacks,
    in the query string or an Authorization header)."""
    value = mutate(key, spec.get("mutate", []))
    placement = spec.get("placement", "header")
    if placement == "query":
        return [], [("secret_token", value)]
    if placement == "bearer":
        return [("Authorization", f"Bearer {value}")], []
    return [(spec.get("header", "X-Telegram-Bot-Api-Secret-Token"), value)], []


def slack_v0(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Slack's v0 signature: ``v0=`` + HMAC-SHA256(signing secret, ``v0:{timestamp}:{body}``), with the
    timestamp in X-Slack-Request-Timestamp (refused outside 5 minutes)."""
    stamp = str(spec["timestamp_literal"]) if "timestamp_literal" in spec else str(now + int(spec.get("timestamp", 0)))
    version = spec.get("version", "v0")
    template = spec.get("basestring", "{version}:{ts}:{body}").encode()
    base = template.replace(b"{version}", version.encode()).replace(b"{ts}", stamp.encode("latin-1"))
    base = base.replace(b"{body}", body)
    digest = hmac.new(key.encode(), base, _digest(spec.get("digest", "sha256"))).hexdigest()
    signature = mutate(f"{version}={digest}", spec.get("mutate", []))
    if "timestamp_header" in spec:
        header_stamp = str(spec["timestamp_header"])
    elif "timestamp_literal" in spec:
        header_stamp = stamp
    else:
        header_stamp = str(int(stamp) + int(spec.get("timestamp_header_delta", 0)))
    headers: Pairs = []
    if not spec.get("omit_timestamp"):
        headers.append(("X-Slack-Request-Timestamp", header_stamp))
    if not spec.get("omit_signature"):
        headers.append((spec.get("header", "X-Slack-Signature"), signature))
    return headers, []


def meta_sha256(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Meta's X-Hub-Signature-256: ``sha256=`` + HMAC-SHA256(app secret, raw body), hex."""
    digest = _digest(spec.get("digest", "sha256"))
    construction = spec.get("construction", "hmac")
    if construction == "hmac":
        raw = hmac.new(key.encode(), body, digest).digest()
    elif construction == "plain":  # no key at all
        raw = digest(body).digest()
    elif construction == "prefix":  # the naive H(key || body)
        raw = digest(key.encode() + body).digest()
    elif construction == "suffix":
        raw = digest(body + key.encode()).digest()
    else:
        raise RecipeError(f"unknown construction {construction!r}")
    encoded = base64.b64encode(raw).decode() if spec.get("encoding") == "base64" else raw.hex()
    value = mutate(spec.get("prefix", "sha256=") + encoded, spec.get("mutate", []))
    return [(spec.get("header", "X-Hub-Signature-256"), value)], []


def meta_verify_token(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Meta's subscription handshake: the verify token in the query (``hub.verify_token``)."""
    value = mutate(key, spec.get("mutate", []))
    if spec.get("placement") == "header":
        return [("X-Hub-Verify-Token", value)], []
    return [], [(spec.get("param", "hub.verify_token"), value)]


def li_sha256(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """LinkedIn's X-LI-Signature: hex HMAC-SHA256(client secret, ``hmacsha256=`` + raw body), no label."""
    digest = _digest(spec.get("digest", "sha256"))
    signed = spec.get("signed_prefix", "hmacsha256=").encode() + body
    construction = spec.get("construction", "hmac")
    if construction == "hmac":
        raw = hmac.new(key.encode(), signed, digest).digest()
    elif construction == "plain":
        raw = digest(signed).digest()
    elif construction == "prefix":
        raw = digest(key.encode() + signed).digest()
    else:
        raise RecipeError(f"unknown construction {construction!r}")
    encoded = base64.b64encode(raw).decode() if spec.get("encoding") == "base64" else raw.hex()
    value = mutate(spec.get("prefix", "") + encoded, spec.get("mutate", []))
    return [(spec.get("header", "X-LI-Signature"), value)], []


def li_challenge(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """LinkedIn's validation GET carries no secret: ``challengeCode`` (and ``applicationId``) in the query. The
    key, mutated, is sent as the challenge, so an entry can try challenges built from the secret."""
    return [], [(spec.get("param", "challengeCode"), mutate(key, spec.get("mutate", [])))]


# The fake Cloudflare's domain (tests/fakes/cloudflare.DOMAIN): an inbox the kit's catch-all answers.
EMAIL_INBOX = "pa@acme.example"
EMAIL_BASESTRING = "{version}\n{ts}\n{from}\n{to}\n{body}"
_PLACEHOLDER = re.compile(r"\{(version|ts|from|to)\}")


def _email_stamps(spec: Mapping[str, Any], now: int) -> tuple[str, list[str]]:
    """The signed timestamp, and the X-IC-Timestamp values sent (none, one, or several)."""
    stamp = str(spec["timestamp_literal"]) if "timestamp_literal" in spec else str(now + int(spec.get("timestamp", 0)))
    if spec.get("omit_timestamp"):
        return stamp, []
    if "timestamp_header" in spec:
        return stamp, [str(spec["timestamp_header"])]
    if "timestamp_header_deltas" in spec:  # duplicate headers, in this order
        return stamp, [str(int(stamp) + int(delta)) for delta in spec["timestamp_header_deltas"]]
    if "timestamp_header_delta" in spec:
        return stamp, [str(int(stamp) + int(spec["timestamp_header_delta"]))]
    return stamp, [stamp]


def ic_email_v1(spec: Mapping[str, Any], key: str, body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Our Email Worker's signature (channels/email_signature.py): ``v1=`` + HMAC-SHA256(webhook secret,
    ``v1\\n{ts}\\n{envelope from}\\n{envelope to}\\n`` + raw message), with X-IC-Timestamp,
    X-IC-Envelope-From and X-IC-Envelope-To. The envelope values signed and those sent may differ
    (``envelope_from`` / ``envelope_to`` signed, ``*_header`` or ``envelope_to_headers`` sent)."""
    stamp, stamps = _email_stamps(spec, now)
    version = str(spec.get("version", "v1"))
    envelope_from, envelope_to = str(spec.get("envelope_from", "")), str(spec.get("envelope_to", EMAIL_INBOX))
    template = str(spec.get("basestring", EMAIL_BASESTRING))
    prefix, found, suffix = template.partition("{body}")
    if not found:
        raise RecipeError("basestring must hold {body}")
    fill = {"version": version, "ts": stamp, "from": envelope_from, "to": envelope_to}

    def filled(text: str) -> bytes:  # one pass: a value holding "{to}" stays as it is
        return _PLACEHOLDER.sub(lambda m: fill[m.group(1)], text).encode("utf-8", "surrogatepass")

    raw = hmac.new(key.encode(), filled(prefix) + body + filled(suffix), _digest(spec.get("digest", "sha256"))).digest()
    encoded = base64.b64encode(raw).decode() if spec.get("encoding") == "base64" else raw.hex()
    signature = f"{version}={encoded}"
    headers: Pairs = [("X-IC-Timestamp", value) for value in stamps]
    if not spec.get("omit_envelope_from"):
        headers.append(("X-IC-Envelope-From", str(spec.get("envelope_from_header", envelope_from))))
    if not spec.get("omit_envelope_to"):
        sent_to = spec.get("envelope_to_headers", [spec.get("envelope_to_header", envelope_to)])
        headers += [("X-IC-Envelope-To", str(value)) for value in sent_to]
    if not spec.get("omit_signature"):
        name = spec.get("header", "X-IC-Signature")
        for steps in spec.get("signature_headers", [spec.get("mutate", [])]):  # several: in this order
            headers.append((name, mutate(signature, steps) if steps else signature))
    return headers, []


RECIPES: dict[str, Callable[[Mapping[str, Any], str, bytes, int], tuple[Pairs, Pairs]]] = {
    "telegram_secret_token": telegram_secret_token,
    "slack_v0": slack_v0,
    "meta_sha256": meta_sha256,
    "meta_verify_token": meta_verify_token,
    "ic_email_v1": ic_email_v1,
    "li_sha256": li_sha256,
    "li_challenge": li_challenge,
}
# Options each recipe reads (besides recipe, key, key_mutate, mutate, signed_body*): an entry naming
# any other is refused when the corpus loads, so a typo cannot silently sign the genuine way.
OPTIONS: dict[str, frozenset[str]] = {
    "telegram_secret_token": frozenset({"placement", "header"}),
    "slack_v0": frozenset({"timestamp", "timestamp_literal", "timestamp_header", "timestamp_header_delta",
                           "omit_timestamp", "omit_signature", "basestring", "version", "digest", "header"}),
    "meta_sha256": frozenset({"digest", "construction", "encoding", "prefix", "header"}),
    "meta_verify_token": frozenset({"placement", "param"}),
    "ic_email_v1": frozenset({"timestamp", "timestamp_literal", "timestamp_header", "timestamp_header_delta",
                              "timestamp_header_deltas", "omit_timestamp", "envelope_from", "envelope_to",
                              "envelope_from_header", "envelope_to_header", "envelope_to_headers",
                              "omit_envelope_from", "omit_envelope_to", "omit_signature", "signature_headers",
                              "basestring", "version", "digest", "encoding", "header"}),
    "li_sha256": frozenset({"digest", "signed_prefix", "construction", "encoding", "prefix", "header"}),
    "li_challenge": frozenset({"param"}),
}
COMMON_OPTIONS = frozenset({"recipe", "key", "key_mutate", "mutate", "signed_body", "signed_body_from"})


def sign(spec: Mapping[str, Any], keys: Mapping[str, str], body: bytes, now: int) -> tuple[Pairs, Pairs]:
    """Headers and query parameters that ``spec`` adds to a request whose signed bytes are ``body``."""
    recipe = RECIPES.get(spec.get("recipe", ""))
    if recipe is None:
        raise RecipeError(f"unknown recipe {spec.get('recipe')!r}; known: {sorted(RECIPES)}")
    return recipe(spec, resolve_key(spec, keys), body, now)


def query_string(pairs: Pairs) -> str:
    return urlencode(pairs) if pairs else ""
