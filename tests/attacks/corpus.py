"""Attack corpora as data: ``tests/attacks/<kind>/attacks.jsonl``, one request a line (README.md).

This module loads and checks a corpus without a server (``load`` refuses an entry it could not send
exactly as written) and turns an entry into bytes on the wire (``materialize``) once the kit has armed
the channel and knows its keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.attacks import recipes
from tests.attacks.wire import Wire, build_head

ROOT = Path(__file__).resolve().parent
CORPUS_FILE = "attacks.jsonl"
NOT_APPLICABLE_FILE = "not_applicable.json"
MIN_ENTRIES = 200
HOST = "bots.example.com"  # IC_PUBLIC_URL's host, as a provider would send it
HOLD_OPEN_S = 1.5  # how long a request promising more body than it sends waits before half-closing

# The list (every kind covers each, or says in not_applicable.json why it cannot apply)...
REQUIRED_CATEGORIES = (
    "forged_signature", "stale_signature", "tampered_signature", "truncated_signature", "secret_case",
    "secret_one_char", "replay", "body_swap", "oversized", "lying_content_length", "malformed_json",
    "malformed_form", "malformed_mime", "unknown_tenant",
)
# ...and the others a corpus may use.
OTHER_CATEGORIES = ("missing_signature", "handshake", "unknown_kind")
CATEGORIES = REQUIRED_CATEGORIES + OTHER_CATEGORIES
DATABASES = ("sqlite", "postgres+redis")  # the attack server's parameters (conftest.py)
# Refusals only: a corpus entry that expects a 2xx (or a 500) is not an attack that is refused.
REFUSAL_STATUSES = frozenset({400, 401, 403, 404, 413})
METHODS = frozenset({"GET", "POST"})

_FIELDS = frozenset({"id", "category", "method", "path", "query", "headers", "headers_from", "body", "body_b64",
                     "body_parts", "body_from", "sign", "framing", "expect", "finding", "note"})
_BODY_FIELDS = ("body", "body_b64", "body_parts", "body_from")
_FRAMING = frozenset({"content_length", "content_length_delta", "content_lengths", "omit_content_length", "chunked"})

Pairs = list[tuple[str, str]]


class CorpusError(ValueError):
    """A corpus entry that is not well formed (the message names the file, line and reason)."""


@dataclass(frozen=True)
class Attack:
    id: str
    category: str
    method: str
    status: int
    code: str | None
    spec: Mapping[str, Any]
    findings: Mapping[str, str] = field(default_factory=dict)  # database -> why the product fails it today

    def finding(self, database: str) -> str | None:
        return self.findings.get(database)


@dataclass(frozen=True)
class Captured:
    """A genuine request the kit sent while arming (before the key rotated): what a replay resends."""

    method: str
    path: str
    headers: Pairs
    body: bytes


@dataclass(frozen=True)
class Context:
    keys: Mapping[str, str]  # current, previous and the kit's other secrets
    tenant: str
    captured: Captured
    now: int  # Unix time the Slack recipes count from


def corpus_path(kind: str) -> Path:
    return ROOT / kind / CORPUS_FILE


def not_applicable(kind: str) -> dict[str, str]:
    """Required categories this kind cannot have, each with the reason (``<kind>/not_applicable.json``)."""
    path = ROOT / kind / NOT_APPLICABLE_FILE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def load(kind: str) -> list[Attack]:
    path = corpus_path(kind)
    if not path.exists():
        raise CorpusError(f"{kind} has no attack corpus: {path} is missing")
    attacks: list[Attack] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            attacks.append(_attack(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorpusError(f"{path.name} line {number}: {exc}") from exc
    ids = [a.id for a in attacks]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"{path}: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return attacks


def _pairs(value: Any, what: str) -> Pairs:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                              for p in value):
        raise ValueError(f"{what} must be a list of [name, value] string pairs")
    for name, item in value:
        (name + item).encode("latin-1")  # a header line is bytes on the wire
    return [(name, item) for name, item in value]


def _check_sign(spec: Mapping[str, Any]) -> None:
    recipe = spec.get("recipe")
    if recipe not in recipes.RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}")
    unknown = set(spec) - recipes.COMMON_OPTIONS - recipes.OPTIONS[recipe]
    if unknown:
        raise ValueError(f"recipe {recipe} has no option {sorted(unknown)}")
    for steps in (spec.get("mutate", []), spec.get("key_mutate", [])):
        for step in steps:
            if step.partition(":")[0] not in recipes.MUTATIONS:
                raise ValueError(f"unknown mutation {step!r}")


def _attack(entry: dict[str, Any]) -> Attack:
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    if entry["category"] not in CATEGORIES:
        raise ValueError(f"unknown category {entry['category']!r}")
    if entry["method"] not in METHODS or not str(entry["path"]).startswith("/v1/"):
        raise ValueError("method must be GET or POST and path start with /v1/")
    if sum(name in entry for name in _BODY_FIELDS) > 1:
        raise ValueError(f"at most one of {_BODY_FIELDS}")
    _pairs(entry.get("headers", []), "headers")
    _pairs(entry.get("query", []), "query")
    if set(entry.get("framing", {})) - _FRAMING:
        raise ValueError(f"unknown framing {sorted(set(entry['framing']) - _FRAMING)}")
    if "sign" in entry:
        _check_sign(entry["sign"])
    expect = entry["expect"]
    if expect["status"] not in REFUSAL_STATUSES:
        raise ValueError(f"expect.status {expect['status']} is not a refusal {sorted(REFUSAL_STATUSES)}")
    finding = entry.get("finding", {})
    findings = dict.fromkeys(DATABASES, finding) if isinstance(finding, str) else dict(finding)
    if set(findings) - set(DATABASES) or not all(isinstance(r, str) and r for r in findings.values()):
        raise ValueError(f"finding must be a reason, or a reason per database of {DATABASES}")
    return Attack(id=str(entry["id"]), category=entry["category"], method=entry["method"], status=int(expect["status"]),
                  code=expect.get("code"), spec=entry, findings=findings)


# -- on the wire ------------------------------------------------------------------------------------

def _body(spec: Mapping[str, Any], prefix: str, captured: Captured) -> bytes:
    if f"{prefix}from" in spec:
        if spec[f"{prefix}from"] != "captured":
            raise CorpusError(f"{prefix}from must be 'captured'")
        return captured.body
    if prefix + "b64" in spec:
        return base64.b64decode(spec[prefix + "b64"])
    if prefix + "parts" in spec:
        return b"".join(text.encode() * int(times) for text, times in spec[prefix + "parts"])
    return str(spec.get(prefix.rstrip("_"), "")).encode("utf-8", "surrogatepass")


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def materialize(attack: Attack, context: Context) -> Wire:
    """The entry as bytes: static headers, the recipe's signature (over ``signed_body`` when the entry
    swaps bodies), then the framing the entry asks for (an honest Content-Length unless it lies)."""
    spec = attack.spec
    body = _body(spec, "body_", context.captured)
    headers: Pairs = [("Host", HOST)]
    if spec.get("headers_from") == "captured":
        headers += context.captured.headers
    headers += _pairs(spec.get("headers", []), "headers")
    query = _pairs(spec.get("query", []), "query")
    if "sign" in spec:
        sign_spec = spec["sign"]
        signed = body
        if "signed_body" in sign_spec or "signed_body_from" in sign_spec:
            signed = _body(sign_spec, "signed_body_", context.captured)
        extra_headers, extra_query = recipes.sign(sign_spec, context.keys, signed, context.now)
        headers += extra_headers
        query += extra_query
    target = str(spec["path"]).replace("{tenant}", context.tenant)
    if query:
        target += "?" + urlencode(query)
    framing = spec.get("framing", {})
    wire_body = body
    declared: int | None = len(body)
    if "chunked" in framing:
        wire_body = _chunked(body, int(framing["chunked"]))
        headers.append(("Transfer-Encoding", "chunked"))
        declared = None
    if "content_lengths" in framing:
        headers += [("Content-Length", str(v)) for v in framing["content_lengths"]]
        declared = None
    elif "content_length" in framing:
        headers.append(("Content-Length", str(framing["content_length"])))
        declared = int(framing["content_length"]) if str(framing["content_length"]).isdigit() else None
    elif "content_length_delta" in framing:
        declared = len(body) + int(framing["content_length_delta"])
        headers.append(("Content-Length", str(declared)))
    elif "chunked" not in framing and not framing.get("omit_content_length"):
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    # A length promising more than is sent: the server waits for the rest, so wait, then half-close.
    hold = HOLD_OPEN_S if declared is not None and declared > len(wire_body) else 0.0
    return Wire(build_head(attack.method, target, headers), wire_body, hold)
