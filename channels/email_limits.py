"""Bounds on what the email parser is given (channels/email_mime.py), so that no message, however built,
costs more than a moment to read.

The standard library's header parser is quadratic in a header's length (a From folded over 400 KB took 31 s
here, a Subject of 400 KB of encoded words 16 s) and its MIME parser slow in the number of parts (100 000
parts, 4 s). Anyone can send such a message to an inbox, and Cloudflare passes up to 25 MB. Before parsing,
in one linear pass: a header field longer than ``MAX_FIELD`` is left out, the top headers stop at
``MAX_HEADERS``, a run of folded lines anywhere (a part's header) stops at ``MAX_FIELD``, and the message
is cut before its ``MAX_PARTS``-th boundary line. Each cut is named as a problem of the message.
"""

from __future__ import annotations

import re

MAX_FIELD = 16 * 1024  # RFC 5322 lines are at most 998 characters; a folded References may be long
MAX_HEADERS = 128 * 1024
MAX_PARTS = 1000
_BOUNDARY_LINE = re.compile(rb"^--", re.MULTILINE)
_FOLDED_RUN = re.compile(rb"(?:^[ \t][^\n]*\n){2,}", re.MULTILINE)


def bounded(raw: bytes) -> tuple[bytes, list[str]]:
    """``raw`` within the bounds above, and what was left out."""
    problems: list[str] = []
    split = _end_of_headers(raw)
    head, body = raw[:split], raw[split:]
    if len(head) > MAX_FIELD:
        head = _bounded_headers(head, problems)
    body = _bounded_folds(body, problems)
    cut = _nth_boundary(body, MAX_PARTS)
    if cut is not None:
        body = body[:cut]
        problems.append(f"more than {MAX_PARTS} MIME parts: the rest was not read")
    return head + body, problems


def _end_of_headers(raw: bytes) -> int:
    found = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if not found:
        return len(raw)
    first = min(found)
    return first + (4 if raw.startswith(b"\r\n\r\n", first) else 2)


def _bounded_headers(head: bytes, problems: list[str]) -> bytes:
    fields: list[list[bytes]] = []  # each field's lines (joined once: appending bytes would be quadratic)
    sizes: list[int] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
            sizes[-1] += len(line)
        else:
            fields.append([line])
            sizes.append(len(line))
    kept: list[bytes] = []
    total = 0
    for lines, size in zip(fields, sizes, strict=True):
        name = lines[0].split(b":", 1)[0][:40].decode("latin-1", "replace").strip()
        if size > MAX_FIELD:
            problems.append(f"the {name} header is longer than {MAX_FIELD // 1024} KB: left out")
            continue
        if total + size > MAX_HEADERS:
            problems.append(f"headers beyond {MAX_HEADERS // 1024} KB: left out")
            break
        kept.append(b"".join(lines))
        total += size
    joined = b"".join(kept)
    return joined if joined.endswith((b"\n\n", b"\r\n\r\n")) else joined.rstrip(b"\r\n") + b"\n\n"


def _bounded_folds(body: bytes, problems: list[str]) -> bytes:
    """A run of continuation lines longer than a field may be (a part's header folded without end)."""
    if len(body) <= MAX_FIELD:
        return body
    pieces: list[bytes] = []
    start = 0
    for run in _FOLDED_RUN.finditer(body):
        if run.end() - run.start() > MAX_FIELD:
            pieces += [body[start:run.start()], body[run.start():run.start() + MAX_FIELD].rsplit(b"\n", 1)[0], b"\n"]
            start = run.end()
    if not pieces:
        return body
    problems.append(f"folded lines beyond {MAX_FIELD // 1024} KB: left out")
    return b"".join([*pieces, body[start:]])


def _nth_boundary(body: bytes, limit: int) -> int | None:
    for count, found in enumerate(_BOUNDARY_LINE.finditer(body), start=1):
        if count > limit:
            return found.start()
    return None
