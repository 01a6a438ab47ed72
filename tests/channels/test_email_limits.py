"""Messages built to make the parser slow (channels/email_limits.py): before the bounds, a From folded over
400 KB took 31 s to parse and 10 MB ones minutes; now each is cut where it exceeds the bounds, says what
was left out, and the rest is read."""

from __future__ import annotations

import time

import pytest

from channels.email_limits import MAX_FIELD, bounded
from channels.email_mime import parse_mail

MB = 1_000_000
HOSTILE = {
    "a From folded over a megabyte": b"From: a" + b"\n b" * (MB // 3) + b"\n\nhi",
    "a Subject of encoded words": b"From: a@b.example\nSubject: " + b"=?utf-8?q?a?= " * (MB // 14) + b"\n\nhi",
    "a From naming many addresses": b"From: " + b"a@b.example, " * (MB // 13) + b"\n\nhi",
    "a hundred thousand parts": b"From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n"
                                + b"--b\nContent-Type: text/plain\n\nhi\n" * 100_000 + b"--b--\n",
    "a part's header folded without end": b"From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n"
                                           b"--b\nX-Long: a" + b"\n b" * (MB // 3) + b"\n\nhi\n--b--\n",
    "megabytes of markup": b"From: a@b.example\nContent-Type: text/html\n\n" + b"<div>" * MB,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_message_is_cut_and_read_at_once(name: str) -> None:
    started = time.perf_counter()
    parsed = parse_mail(HOSTILE[name])
    assert time.perf_counter() - started < 10  # a generous bound: unbounded, the first took minutes
    assert parsed is not None


def test_what_is_cut_is_named_and_the_rest_read() -> None:
    junk = b"X-Junk: a" + b"\n b" * MAX_FIELD
    raw, problems = bounded(b"From: Dana <dana@example.com>\n" + junk + b"\nSubject: hi\n\nbody")
    assert problems == [f"the X-Junk header is longer than {MAX_FIELD // 1024} KB: left out"]
    parsed = parse_mail(raw)
    assert (parsed.from_address, parsed.subject, parsed.text) == ("dana@example.com", "hi", "body")
    small = b"From: a@b.example\n\nhello"
    assert bounded(small) == (small, [])
