"""Writes the attack corpora (``tests/attacks/<kind>/attacks.jsonl``): ``python -m tests.attacks.generate``.

The JSONL files are the corpus (the test reads only them); this script is how they were written, so that
a category's hundred variations are one loop here rather than a hundred hand-typed lines, and so that
adding a variation to every kind is one edit. It is deterministic: running it again rewrites the same
bytes. An entry the product fails (a known finding, see README.md) carries ``finding`` with the reason;
today only email's NUL entries do (generate_email.py).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
LIMIT = 1_000_000  # IC_MAX_WEBHOOK_BYTES' default
CODES = {401: "invalid_signature", 403: "verification_failed", 404: "unknown_kind", 413: "payload_too_large",
         400: "malformed_payload"}

# Entries the product fails today carry ``finding`` (README.md, "Findings"): email's NULs (generate_email.py).


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Profile:
    """What a kind's corpus needs to know of its wire format."""

    kind: str
    recipe: str
    message: Callable[[int, str], str]  # serial, text -> a genuine body carrying a person's text
    content_type: str = "application/json"
    body_bound: bool = True  # the signature covers the body (Slack, Meta); Telegram's secret does not
    text_only_bodies: bool = False  # the signature is computed over the body as text (slack_sdk)
    key_length: int = 32
    limit: int = LIMIT  # the webhook's body limit (IC_MAX_EMAIL_BYTES for email)
    body_format: str = "JSON"  # what a body must be, for the notes
    not_applicable: dict[str, str] = field(default_factory=dict)  # required category -> why it cannot apply


@dataclass
class Corpus:
    profile: Profile
    entries: list[dict[str, Any]] = field(default_factory=list)
    serial: int = 0

    @property
    def path(self) -> str:
        return f"/v1/{self.profile.kind}/webhook/{{tenant}}"

    def next_message(self, text: str = "hello from an attacker") -> str:
        self.serial += 1
        return self.profile.message(self.serial, text)

    def sign(self, **options: Any) -> dict[str, Any]:
        return {"recipe": self.profile.recipe, "key": "current", **options}

    def add(self, category: str, note: str, *, expect: int = 401, code: str | None = "", method: str = "POST",
            path: str | None = None, body: str | None = None, content_type: str | None = "",
            finding: str | dict[str, str] | None = None, **fields: Any) -> None:
        number = sum(1 for e in self.entries if e["category"] == category) + 1
        entry: dict[str, Any] = {"id": f"{category}-{number:03d}", "category": category, "method": method,
                                 "path": path or self.path}
        headers = list(fields.pop("headers", []))
        kind_type = self.profile.content_type if content_type == "" else content_type
        if kind_type and method == "POST":
            headers.insert(0, ["Content-Type", kind_type])
        if headers:
            entry["headers"] = headers
        if body is None and method == "POST" and not any(k.startswith("body") for k in fields):
            body = self.next_message()
        if body is not None:
            entry["body"] = body
        entry.update(fields)
        entry["expect"] = {"status": expect, "code": CODES.get(expect) if code == "" else code}
        if finding:
            entry["finding"] = finding
        entry["note"] = note
        self.entries.append(entry)

    def write(self) -> int:
        directory = ROOT / self.profile.kind
        directory.mkdir(exist_ok=True)
        lines = [json.dumps(e, ensure_ascii=True) for e in self.entries]
        (directory / "attacks.jsonl").write_text("\n".join(lines) + "\n")
        reasons = directory / "not_applicable.json"
        if self.profile.not_applicable:
            reasons.write_text(json.dumps(self.profile.not_applicable, indent=2) + "\n")
        elif reasons.exists():
            reasons.unlink()
        return len(lines)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- categories every kind has ---------------------------------------------------------------------

RANDOM_KEYS = ["kX9vQ2mL7pR4tY8wZ3nB6cD1fG5hJ0sA", "0000000000000000000000000000000", "x", "secret", "null",
               "undefined", "true", "*", "%", "default", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
               "a" * 256, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
               "Q29ycmVjdCBIb3JzZSBCYXR0ZXJ5IFN0YXBsZQ", "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_", "s\u00e9cr\u00e8t"]


def forged_keys(c: Corpus) -> None:
    for key in RANDOM_KEYS:
        c.add("forged_signature", f"signed with a key the server never had ({key[:12]!r}…)",
              sign=c.sign(key=f"literal:{key}"))
    for key in ("literal:", "literal:current", "literal:previous"):
        if key == "literal:":
            c.add("forged_signature", "signed with an empty key", sign=c.sign(key="literal: ", key_mutate=["empty"]))
        else:
            c.add("forged_signature", f"signed with the word {key[8:]!r} as the key", sign=c.sign(key=key))


def secret_variants(c: Corpus) -> None:
    """The genuine key, differing in case, by one character, or truncated: each signed with the real
    algorithm, so only the key is wrong."""
    c.add("secret_case", "the key upper-cased", sign=c.sign(key_mutate=["upper"]))
    c.add("secret_case", "the key's case swapped", sign=c.sign(key_mutate=["swapcase"]))
    for n in [*range(12), -1, -2, -3]:
        c.add("secret_case", f"the key with the case of its letter {n} flipped",
              sign=c.sign(key_mutate=[f"swapcase_letter:{n}"]))
    for i in [*range(0, c.profile.key_length, 2), -1]:
        c.add("secret_one_char", f"the key with character {i} changed", sign=c.sign(key_mutate=[f"replace_at:{i}"]))
    for steps, note in ((["append:0"], "one character appended"), (["append:a"], "another appended"),
                        (["prepend:x"], "one character prepended"), (["drop_at:5"], "character 5 removed"),
                        (["insert_at:16:Z"], "a character inserted in the middle")):
        c.add("secret_one_char", f"the key with {note}", sign=c.sign(key_mutate=steps))
    for n in (1, 8, 16, 24, 31, -1, -2):
        c.add("truncated_signature", f"signed with the key truncated to [:{n}]",
              sign=c.sign(key_mutate=[f"truncate:{n}"]))


def replays_with_previous_key(c: Corpus, bodies: list[tuple[str, str]]) -> None:
    c.add("replay", "the genuine request captured before the key rotated, resent byte for byte",
          body_from="captured", headers_from="captured", content_type=None)
    c.add("replay", "the captured request to an unknown tenant", path=c.path.replace("{tenant}", "nobody"),
          body_from="captured", headers_from="captured", content_type=None)
    for body, note in bodies:
        c.add("replay", f"{note}, signed with the key in force before the rotation", body=body,
              sign=c.sign(key="previous"))


def oversized(c: Corpus) -> None:
    limit, body_format = c.profile.limit, c.profile.body_format
    pad = len('{"pad":""}')
    big = [['{"pad":"', 1], ["x", limit + 1 - pad], ['"}', 1]]
    at_limit = [["x", limit]]
    signed = c.sign()
    c.add("oversized", "Content-Length one byte over the limit, no body sent: refused before reading",
          expect=413, body="", framing={"content_length": limit + 1}, sign=signed)
    for declared in (50_000_000, 2**31, 2**63 - 1):
        c.add("oversized", f"Content-Length {declared}, no body sent", expect=413, body="",
              framing={"content_length": declared}, sign=signed)
    c.add("oversized", "a body of limit + 1 bytes, correctly signed", expect=413, body_parts=big, sign=signed)
    c.add("oversized", "a body of limit + 1 bytes, forged signature", expect=413, body_parts=big,
          sign=c.sign(key="literal:forged"))
    c.add("oversized", "a body of limit + 1 bytes, unsigned", expect=413, body_parts=big)
    c.add("oversized", "limit + 1 bytes, chunked (no Content-Length): cut off while counting", expect=413,
          body_parts=big, framing={"chunked": 65536}, sign=signed)
    c.add("oversized", f"{limit * 2.5 / 1e6:g} MB chunked and unsigned", expect=413, body_parts=[["y", limit * 5 // 2]],
          framing={"chunked": 262144})
    c.add("oversized", "over the limit to an unknown tenant: the size is checked first", expect=413,
          path=c.path.replace("{tenant}", "nobody"), body="", framing={"content_length": limit + 1}, sign=signed)
    c.add("oversized", f"exactly the limit, signed, not {body_format}: read, then refused as malformed", expect=400,
          body_parts=at_limit, sign=signed)
    c.add("oversized", f"exactly the limit, chunked, signed, not {body_format}", expect=400, body_parts=at_limit,
          framing={"chunked": 65536}, sign=signed)


def lying_lengths(c: Corpus) -> None:
    signed = c.sign()
    short = 400 if not c.profile.body_bound else 401
    why = ("the header is valid, so the truncated body is parsed" if short == 400
           else "the signature covers the whole body")
    for delta in (-1, -10):
        c.add("lying_content_length", f"Content-Length {delta} below the body: {why}", expect=short,
              framing={"content_length_delta": delta}, sign=signed)
    c.add("lying_content_length", f"Content-Length 1: the server reads one byte; {why}", expect=short,
          framing={"content_length": 1}, sign=signed)
    c.add("lying_content_length", f"Content-Length 0 with a body after it: {why}", expect=short,
          framing={"content_length": 0}, sign=signed)
    for delta in (1, 100):
        c.add("lying_content_length", f"Content-Length {delta} above the body, then a half-close", expect=400,
              code=None, framing={"content_length_delta": delta}, sign=signed)
    for value in ("abc", "-1", "1e3", "0x10", "+12"):
        c.add("lying_content_length", f"Content-Length {value!r}: the HTTP server refuses the framing",
              expect=400, code=None, framing={"content_length": value}, sign=signed)
    c.add("lying_content_length", "two different Content-Length headers", expect=400, code=None,
          framing={"content_lengths": ["12", "5"]}, sign=signed)
    c.add("lying_content_length", "Content-Length and chunked together, the body not the one signed",
          expect=400 if not c.profile.body_bound else 401, body="not the body that was signed",
          framing={"chunked": 7, "content_length": 3}, sign=c.sign(signed_body=c.next_message()))


JSON_SYNTAX = ["", " ", "\t\n", "{", "}", "[", "{]", '{"a":}', '{"a":1,}', "{'a':1}", '{"a":1}{"b":2}', "nul", "tru",
               '"unterminated', "1 2", '{"a":1} trailing', "null", "true", "0", "[]", "[{}]", '"a string"', "NaN",
               "1e400", "-"]


def malformed(c: Corpus, shapes: list[tuple[str, str]]) -> None:
    """Bodies no provider sends, correctly signed (so only the body is wrong): 400 malformed_payload."""
    signed = c.sign()
    for body in JSON_SYNTAX:
        c.add("malformed_json", f"not a JSON object: {body[:20]!r}", expect=400, body=body, sign=signed)
    for body, note in shapes:
        c.add("malformed_json", note, expect=400, body=body, sign=signed)
    bad_utf8 = 401 if c.profile.text_only_bodies else 400  # slack_sdk signs text: bytes that are not refused
    c.add("malformed_json", "invalid UTF-8 inside a string", expect=bad_utf8, body_b64=b64(b'{"a":"\xff\xfe"}'),
          sign=signed)
    c.add("malformed_json", "an overlong UTF-8 encoding of '/'", expect=bad_utf8, body_b64=b64(b'{"a":"\xc0\xaf"}'),
          sign=signed)
    packed = gzip.compress(c.next_message().encode(), mtime=0)
    c.add("malformed_json", "a genuine body gzip-compressed (Content-Encoding: gzip), signed as sent",
          expect=bad_utf8, body_b64=b64(packed), headers=[["Content-Encoding", "gzip"]], sign=signed)
    deep = [["[", 100_000], ["]", 100_000]]
    c.add("malformed_json", "arrays nested 100 000 deep", expect=400, body_parts=deep, sign=signed)
    c.add("malformed_json", "objects nested 50 000 deep", expect=400,
          body_parts=[['{"a":', 50_000], ["1", 1], ["}", 50_000]], sign=signed)
    c.add("malformed_json", "a message whose text is a lone surrogate", expect=400,
          body=c.next_message("lone \ud800 surrogate"), sign=signed)
    c.add("malformed_json", "a message whose text holds NUL", expect=400, body=c.next_message("nul \u0000 inside"),
          sign=signed)
    raw_surrogate = c.next_message("lone SURROGATE here").encode().replace(b"SURROGATE", b"\xed\xa0\x80")
    c.add("malformed_json", "a message whose text holds half a surrogate pair as raw UTF-8 bytes (ED A0 80)",
          expect=bad_utf8, body_b64=b64(raw_surrogate), sign=signed)


FORM_TYPE = "application/x-www-form-urlencoded"
MIME_BODIES = [
    ("multipart/form-data; boundary=XyZ", '--XyZ\r\nContent-Disposition: form-data; name="update"\r\n'
     'Content-Type: application/json\r\n\r\n{"a":1}\r\n--XyZ--\r\n', "multipart/form-data carrying JSON in a part"),
    ("multipart/form-data", "--nope\r\n\r\n{}\r\n--nope--\r\n", "multipart without a boundary parameter"),
    ("multipart/mixed; boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n", "multipart/mixed"),
    ("message/rfc822", "From: mallory@example.com\r\nSubject: hi\r\n\r\nhello\r\n", "an e-mail message"),
    ("multipart/related; boundary=r; type=application/json", "--r\r\nContent-Type: application/json\r\n\r\n"
     '{"a":1}\r\n--r--\r\n', "multipart/related around JSON"),
]


def forms_and_mime(c: Corpus) -> None:
    signed = c.sign()
    if c.profile.kind != "slack":  # Slack's forms are its own (generate_kinds.py)
        for body in ("update_id=1&text=hi", "payload=%7B%7D", "a=1&a=2", "%zz=%zz", "=&=", "object=whatsapp"):
            c.add("malformed_form", f"a form body where JSON is expected: {body!r}", expect=400, body=body,
                  content_type=FORM_TYPE, sign=signed)
    for content_type, body, note in MIME_BODIES:
        c.add("malformed_mime", f"{note}, signed", expect=400, body=body, content_type=content_type, sign=signed)


TENANTS = ["nobody", "Default", "DEFAULT", "default2", "defaul", "efault", "default_", "default-", "default%20",
           "%20default", "default.", "d%C3%A9fault", "%F0%9F%98%80", "default;x=1", "%2e%2e", "default%3F",
           "a" * 300, "prj_default", "0", "null", "%ff", "default%00"]


def unknown_tenants(c: Corpus) -> None:
    for tenant in TENANTS:
        c.add("unknown_tenant", f"correctly signed, to the tenant {tenant[:24]!r}",
              path=c.path.replace("{tenant}", tenant), sign=c.sign())
    kind = c.profile.kind
    for path in (f"/v1/{kind.title()}/webhook/{{tenant}}", f"/v1/{kind}2/webhook/{{tenant}}",
                 f"/v1/{kind.upper()}/webhook/{{tenant}}", f"/v1/{kind}%00/webhook/{{tenant}}"):
        c.add("unknown_kind", f"correctly signed, to the channel {path.split('/')[2]!r}", expect=404, path=path,
              sign=c.sign())


def common(c: Corpus) -> None:
    forged_keys(c)
    secret_variants(c)
    oversized(c)
    lying_lengths(c)
    forms_and_mime(c)
    unknown_tenants(c)


def main() -> None:
    from tests.attacks.generate_email import email
    from tests.attacks.generate_kinds import BUILDERS
    from tests.attacks.generate_linkedin import linkedin

    for build in (*BUILDERS, email, linkedin):
        corpus = build()
        print(f"{corpus.profile.kind}: {corpus.write()} entries")


if __name__ == "__main__":
    main()
