"""channels/email_mime.py: the MIME corpus (tests/fixtures/email, expectations in expected.json), the DMARC
rule (ID-3: only the topmost Authentication-Results, only ours, only for the From domain), what counts as
automated mail, charsets, and that no input, however broken, makes parsing raise or crawl."""

from __future__ import annotations

import email
import email.policy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from channels.email_limits import MAX_PARTS
from channels.email_mime import Attachment, ParsedMail, parse_mail
from channels.email_text import decode_text, new_part

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
FIELDS = [name for name in ParsedMail.__dataclass_fields__]
CF = "mx.cloudflare.net"


def as_plain(mail: ParsedMail) -> dict[str, Any]:
    """The parsed mail as the JSON expectations spell it (lists, attachments as dicts)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(mail).items()}


def mail(headers: str, body: str = "Hello.\n") -> bytes:
    return (headers.strip("\n") + "\n\n" + body).encode()


def message_with_ar(*ar_values: str, sender: str = "Dana <dana@example.com>") -> bytes:
    lines = [f"Authentication-Results: {value}" for value in ar_values]
    return mail("\n".join([*lines, f"From: {sender}", "To: bot@acme.dev", "Subject: hi"]))


# -- the corpus -----------------------------------------------------------------------------------------------


def test_every_fixture_has_expectations_and_every_expectation_a_fixture() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in FIXTURES.glob("*.eml"))
    for name, expected in EXPECTED.items():
        assert set(expected) == {"covers", *FIELDS}, name  # every field is pinned, none forgotten


@pytest.mark.parametrize("line_ending", ["as stored", "CRLF"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_as_expected(name: str, line_ending: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    if line_ending == "CRLF":  # the wire form; the files are kept with LF
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    expected = {key: value for key, value in EXPECTED[name].items() if key != "covers"}
    parsed = as_plain(parse_mail(raw))
    if line_ending == "CRLF":  # a text part sent 8bit counts its line endings in its decoded size
        for result in (parsed, expected):
            result["attachments"] = [{**a, "size": None} if a["content_type"].startswith(("text/", "message/"))
                                     else a for a in result["attachments"]]
    assert parsed == expected


@pytest.mark.parametrize("name", ["gmail_reply.eml", "outlook365_reply.eml", "outlook_desktop_reply.eml",
                                  "apple_mail_reply.eml", "attachments.eml"])
def test_the_html_alternative_alone_gives_the_same_new_text(name: str) -> None:
    """What the HTML-only path would make of each client's HTML (gmail_quote, divRplyFwdMsg, blockquote cite)."""
    message = email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.default)
    html = next(part for part in message.walk() if part.get_content_type() == "text/html")
    html_only = mail("From: Dana <dana@example.com>\nContent-Type: text/html; charset=utf-8", html.get_content())
    assert " ".join(parse_mail(html_only).text.split()) == " ".join(EXPECTED[name]["text"].split())


def test_the_largest_fixture_parses_quickly() -> None:
    largest = max(FIXTURES.glob("*.eml"), key=lambda path: path.stat().st_size)
    raw = largest.read_bytes()
    started = time.perf_counter()
    for _ in range(10):
        parse_mail(raw)
    assert (time.perf_counter() - started) / 10 < 0.25  # measured ~5 ms; generous for a shared machine


# -- DMARC (ID-3) ----------------------------------------------------------------------------------------------


def test_a_dmarc_pass_for_the_from_domain_in_our_topmost_header_passes() -> None:
    assert parse_mail(message_with_ar(f"{CF}; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"))\
        .dmarc_pass


@pytest.mark.parametrize("ar_values", [
    # A pass planted below ours never counts, whatever ours says.
    (f"{CF}; dmarc=fail header.from=example.com", f"{CF}; dmarc=pass header.from=example.com"),
    (f"{CF}; dmarc=none header.from=example.com", f"{CF}; dmarc=pass header.from=example.com"),
    (f"{CF}; spf=pass smtp.mailfrom=dana@example.com", f"{CF}; dmarc=pass header.from=example.com"),
    # The topmost is someone else's: no searching down for ours.
    ("mx.google.com; dmarc=pass header.from=example.com", f"{CF}; dmarc=pass header.from=example.com"),
    ("mx.google.com; dmarc=pass header.from=example.com",),
    # Ours, but not a pass for the From domain.
    (f"{CF}; dmarc=pass header.from=other.example",),
    (f"{CF}; dmarc=pass header.from=mail.example.com",),
    (f"{CF}; dmarc=pass",),
    (f"{CF}; dmarc=pass header.from=example.com; dmarc=fail header.from=example.com",),
    (f"{CF}; dkim=pass header.d=example.com",),
    (f"{CF}; none",),
])
def test_anything_else_is_not_a_pass(ar_values: tuple[str, ...]) -> None:
    assert parse_mail(message_with_ar(*ar_values)).dmarc_pass is False


def test_authserv_id_and_domains_compare_case_insensitively() -> None:
    raw = message_with_ar("MX.Cloudflare.NET; dmarc=pass header.from=Example.COM", sender="Dana <Dana@EXAMPLE.com>")
    assert parse_mail(raw).dmarc_pass
    assert parse_mail(message_with_ar("mx.example.net 1; dmarc=pass header.from=example.com"),
                      authserv_id="MX.example.net").dmarc_pass
    assert not parse_mail(message_with_ar(f"{CF}; dmarc=pass header.from=example.com"),
                          authserv_id="mx.example.net").dmarc_pass


def test_a_malformed_topmost_header_is_no_pass_and_a_problem() -> None:
    parsed = parse_mail(message_with_ar(f"{CF}; dmarc=", f"{CF}; dmarc=pass header.from=example.com"))
    assert parsed.dmarc_pass is False
    assert "the topmost Authentication-Results header is malformed" in parsed.problems


@pytest.mark.parametrize("from_headers", [
    "From: Dana <dana@example.com>\nFrom: Eve <eve@evil.example>",  # two From headers: which one did DMARC see?
    "From: Dana <dana@example.com>, eve@evil.example",
    "From: alice@example.com)<bob@example.com>",  # the address-parsing confusion behind CVE-2023-27043
    "From: undisclosed-recipients:;",
])
def test_a_from_that_names_no_single_sender_is_never_a_pass(from_headers: str) -> None:
    raw = mail(f"Authentication-Results: {CF}; dmarc=pass header.from=example.com\n{from_headers}\nSubject: x")
    parsed = parse_mail(raw)
    assert (parsed.from_address, parsed.dmarc_pass) == ("", False)


# -- automated mail --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "reason"), [
    ("From: a@example.com\nAuto-Submitted: no", None),
    ("From: a@example.com\nX-Auto-Response-Suppress: All", None),  # ordinary Outlook/newsletter mail carries it
    ("From: a@example.com\nX-MS-Exchange-Inbox-Rules-Loop: a@example.com", None),  # mail forwarded by a rule
    ("From: a@example.com\nAuto-Submitted: auto-notified", "auto-submitted"),
    ("From: a@example.com\nAuto-Submitted: auto-replied; owner-email=a@example.com", "auto-reply"),
    ("From: a@example.com\nX-Autorespond: Away", "auto-reply"),
    ("From: a@example.com\nPrecedence: auto_reply", "auto-reply"),
    ("From: a@example.com\nX-Auto-Response-Suppress: DR, OOF\nX-MS-Exchange-Inbox-Rules-Loop: a@example.com",
     "auto-reply"),
    ("From: Postmaster <POSTMASTER@example.com>", "bounce"),
    ("From: a@example.com\nReturn-Path: <>", "bounce"),
    ("From: a@example.com\nList-Unsubscribe: <mailto:leave@example.com>", "list"),
    ("From: a@example.com\nPrecedence: junk", "bulk"),
    ("From: a@example.com\nContent-Type: multipart/report; report-type=disposition-notification; boundary=x",
     "auto-submitted"),  # a read receipt
])
def test_automated_reasons(headers: str, reason: str | None) -> None:
    assert parse_mail(mail(headers)).automated == reason


# -- headers -----------------------------------------------------------------------------------------------------


def test_ids_are_normalised() -> None:
    parsed = parse_mail(mail("From: a@example.com\nMessage-ID:\n <folded@example.com>\n"
                             "In-Reply-To: <parent@example.com> (Dana's message of Tuesday)\n"
                             "References: <root@example.com>\n <parent@example.com> <parent@example.com> <>"))
    assert parsed.message_id == "<folded@example.com>"
    assert parsed.in_reply_to == "<parent@example.com>"
    assert parsed.references == ("<root@example.com>", "<parent@example.com>")
    assert parse_mail(mail("From: a@example.com\nMessage-ID: bare@example.com")).message_id == "<bare@example.com>"
    assert parse_mail(mail("From: a@example.com")).message_id is None


def test_raw_utf8_headers_and_hostile_display_names_are_read_and_cleaned() -> None:
    raw = "From: Zoë \u202eevil <zoe@example.com>\nTo: Bot <BOT@Acme.dev>, ops@acme.dev\nSubject: Café\n\nhi\n"
    parsed = parse_mail(raw.encode())
    assert (parsed.from_name, parsed.subject) == ("Zoë evil", "Café")
    assert parsed.to_addresses == ("bot@acme.dev", "ops@acme.dev")
    encoded = parse_mail(mail("From: =?utf-8?q?Dana=0D=0ABcc=3A_x?= <dana@example.com>\nSubject: =?utf-8?q?a=0Ab?="))
    assert (encoded.from_name, encoded.subject) == ("", "a b")  # CR/LF in a name: unreadable, never passed on


def test_attachment_names_are_names_not_paths() -> None:
    raw = mail('From: a@example.com\nContent-Type: multipart/mixed; boundary="b"',
               '--b\nContent-Type: text/plain\n\nsee attached\n'
               '--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="../../etc/passwd"\n'
               'Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n')
    assert parse_mail(raw).attachments == (Attachment("passwd", "application/pdf", 5),)


# -- charsets and text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "charset", "text", "has_problem"), [
    (b"caf\xe9 \x93quoted\x94 \x80", "iso-8859-1", "café “quoted” €", False),  # labels read as browsers do
    (b"caf\xc3\xa9", None, "café", False),  # undeclared UTF-8
    (b"caf\xe9", "utf-8", "caf\ufffd", True),
    (b"\x1b$BF|K\\8l\x1b(B", "iso-2022-jp", "日本語", False),
    (b"\xa1\xa2", "gb2312", "、", False),
    (b"caf\xe9", "x-unknown", "café", True),
    (b"abc", "base64", "abc", True),  # a codec, but not a charset
])
def test_decode_text(payload: bytes, charset: str | None, text: str, has_problem: bool) -> None:
    decoded, problem = decode_text(payload, charset)
    assert (decoded, problem is not None) == (text, has_problem)


@pytest.mark.parametrize(("body", "new"), [
    ("ok, go ahead\n\n> earlier message\n> more", "ok, go ahead"),  # a quote with no "wrote:" line
    ("On Tue, Mar 4, 2025 at 9:15 AM Bot <bot@acme.dev> wrote:\n> only a quote", None),  # falls back to all
    ("Send this:\nTo do: check logs\n- item one\n- item two", "Send this:\nTo do: check logs\n- item one\n- item two"),
    ("Best regards, and thank you for the quick fix on the cluster. It works now.\n\nDana", None),
    ("Done.\n\nThanks,\nDana\n\nP.S. Please also restart the worker.", None),  # a P.S. is not a signature
    ("Done.\n\nBest regards,\nDana Scully\nSRE | Acme\n+1 555 0100\n\nSent from my iPhone", "Done."),
    # A From/To/Subject block without a date line is a draft the person wants sent, not a quoted message.
    ("Please send this:\n\nFrom: ops@acme.dev\nTo: team@acme.dev\nSubject: Outage\n\nThe API is down.", None),
    ("Yes.\n\nFrom: Bot <bot@acme.dev>\nSent: Tuesday, March 4, 2025 9:15 AM\nTo: Dana\nSubject: Go?\n\nGo?",
     "Yes."),
])
def test_new_part(body: str, new: str | None) -> None:
    assert new_part(body) == (new if new is not None else body.strip())


def test_an_empty_plain_alternative_falls_back_to_html_and_inline_images_are_listed() -> None:
    body = ('--a\nContent-Type: text/plain\n\n \n'
            '--a\nContent-Type: multipart/related; boundary="r"\n\n'
            '--r\nContent-Type: text/html\n\n<p>See the graph <img src="cid:g1"></p>\n'
            '--r\nContent-Type: image/png\nContent-ID: <g1>\nContent-Transfer-Encoding: base64\n\niVBORw==\n--r--\n'
            '--a--\n')
    parsed = parse_mail(mail('From: a@example.com\nContent-Type: multipart/alternative; boundary="a"', body))
    assert (parsed.full_text, parsed.attachments) == ("See the graph", (Attachment("", "image/png", 4),))


def test_html_becomes_readable_text() -> None:
    html = ('<p>Run <b>1.</b> then <i>2.</i> - see <a href="https://x.example/a_b">the_runbook</a>, '
            '<a href="https://x.example/">https://x.example/</a> or <a href="mailto:a@x.example">a@x.example</a>'
            '</p><hr><p>+ done #1 [ok]</p><img src="https://track.example/p.gif">')
    text = parse_mail(mail("From: a@example.com\nContent-Type: text/html", html)).full_text
    assert text == ("Run 1. then 2. - see [the_runbook](https://x.example/a_b), <https://x.example/> or a@x.example"
                    "\n\n---\n\n+ done #1 [ok]")


# -- never raise, never crawl ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"", b"\r\n", b"\x00\xff\xfe garbage \x80", b"From: a@example.com\n", b"Subject: only headers",
    b"From: a@example.com\nContent-Type: multipart/mixed; boundary=x\n\n--x--\n",
    b"From: a@example.com\nContent-Type: multipart/mixed\n\nno boundary at all\n",
    b"From: a@example.com\nContent-Type: multipart/alternative; boundary=x\n\n--x\n\n--x--\n",
    b"Content-Type: text/plain; charset=\"\xff\xfe\"\n\n\xff",
    b"Content-Transfer-Encoding: base64\n\n!!!!",
    b"Authentication-Results: \xff\xfe; dmarc=pass\nFrom: \xff@\xfe\n\n",
    b":\n:\n: :\n\n",
])
def test_odd_inputs_do_not_raise(raw: bytes) -> None:
    assert isinstance(parse_mail(raw), ParsedMail)


def test_random_garbage_does_not_raise() -> None:
    rng = random.Random(18)
    for _ in range(200):
        assert isinstance(parse_mail(rng.randbytes(rng.randrange(0, 3000))), ParsedMail)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_and_corrupted_fixtures_do_not_raise(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    rng = random.Random(name)
    for cut in sorted({rng.randrange(len(raw)) for _ in range(30)} | {1, len(raw) // 2, len(raw) - 1}):
        assert isinstance(parse_mail(raw[:cut]), ParsedMail)
    for _ in range(10):
        corrupted = bytearray(raw)
        for _ in range(20):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        assert isinstance(parse_mail(bytes(corrupted)), ParsedMail)


def test_body_text_survives_as_the_new_text_when_nothing_else_is_left() -> None:
    parsed = parse_mail(mail("From: a@example.com", "-- \nonly a signature\n"))
    assert parsed.text == parsed.full_text != ""


def test_two_thousand_parts_stay_fast() -> None:
    parts = "".join(f'--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; '
                    f'filename="f{i}.bin"\n\nx\n' for i in range(2000))
    raw = mail("From: a@example.com\nContent-Type: multipart/mixed; boundary=b", f"--b\n\nhello\n{parts}--b--\n")
    started = time.perf_counter()
    parsed = parse_mail(raw)
    assert time.perf_counter() - started < 5  # ~0.6 s here, most of it the standard library's parser
    # channels/email_limits.py: the message is cut before its 1000th boundary line, and says so
    assert (len(parsed.attachments), parsed.text) == (MAX_PARTS - 1, "hello")
    assert f"more than {MAX_PARTS} MIME parts: the rest was not read" in parsed.problems


def test_a_multipart_nested_thousands_deep_keeps_its_headers() -> None:
    nested = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(3000))
    parsed = parse_mail(mail("From: Dana <dana@example.com>\nSubject: deep\n"
                             "Content-Type: multipart/mixed; boundary=b0", nested))
    assert (parsed.from_address, parsed.subject) == ("dana@example.com", "deep")
    assert parsed.problems


def test_nested_alternatives_are_read_once_each() -> None:
    nested = "".join(f"--a{i}\nContent-Type: multipart/alternative; boundary=a{i + 1}\n\n"
                     f"--a{i + 1}\nContent-Type: image/png\n\nx\n" for i in range(28))
    started = time.perf_counter()
    parse_mail(mail("From: a@example.com\nContent-Type: multipart/alternative; boundary=a0", nested))
    assert time.perf_counter() - started < 2  # each level read twice would be 2**28 visits


def test_a_huge_body_skips_the_reply_heuristics_but_keeps_the_text() -> None:
    body = "All of this is new text.\n" * 20_000
    started = time.perf_counter()
    parsed = parse_mail(mail("From: a@example.com", body))
    assert time.perf_counter() - started < 5
    assert parsed.text == parsed.full_text == body.strip()
