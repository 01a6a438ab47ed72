"""Readable text out of mail bodies, for channels/email_mime.py: charsets, HTML, and the new part of a reply.

Everything here is best effort and never raises on what a sender wrote: a wrong charset decodes with
replacement characters (and says so), HTML becomes plain text, and the "new part" falls back to the whole
text when the reply heuristics leave nothing.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import html2text
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

# The languages whose "On … wrote:" / "From: … Sent: …" headers split a reply from the quoted thread.
# Danish and Swedish are left out on purpose: their signature patterns ("Kh", "Tak", "/\w+") match
# ordinary lines and would cut a person's text short.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "ja")
# The reply heuristics are regular expressions: bound the text they scan so a huge body stays fast.
REPLY_SCAN_LIMIT = 200_000

# WHATWG Encoding: what browsers (and so senders' previews) decode these labels as.
_AS_WINDOWS_1252 = frozenset({"ascii", "iso8859-1"})
# Declared subsets whose mail routinely carries the superset's characters.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949", "big5": "cp950"}
# Valedictions the library treats as the start of a signature; only "-- " and separator rules are trusted
# outright (see _signature_start).
_VALEDICTIONS = tuple(
    pattern for language in REPLY_LANGUAGES for pattern in MAIL_LANGUAGES[language].get("signatures", []))
_POSTSCRIPT = re.compile(r"p\.?s\.?\s*[:.\-]|p\.s\b", re.IGNORECASE)  # "P.S.", "PS:", "PS -"; not "ps aux"
_FIELD_LINE = re.compile(r"[>* ]*[^\s:]{1,20}(?: el)? ?:")  # "From:", "**Sent:**", "> To:", "Envoyé :"
_DATE_LINE = re.compile(r"[>* ]*(?:sent|date|gesendet|datum|envoy[ée]|enviado|fecha|inviato|data|verzonden)\b",
                        re.IGNORECASE)
_BIDI_AND_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def decode_text(payload: bytes, declared: str | None) -> tuple[str, str | None]:
    """The part's text and, when it could not be read faithfully, why (for ParsedMail.problems)."""
    label = (declared or "").strip().strip('"').lower()
    codec = _codec(label) if label else "ascii"
    if codec is None:
        text = _utf8_or_windows_1252(payload)
        return text, f"unknown charset {label[:40]!r}: read as UTF-8 or Windows-1252"
    if codec in _AS_WINDOWS_1252:
        if payload.isascii():
            return payload.decode("ascii"), None
        if codec == "ascii":  # undeclared 8-bit text is nearly always UTF-8 today
            return _utf8_or_windows_1252(payload), None
        codec = "cp1252"
    for candidate in (codec, _SUPERSETS.get(codec)):
        if candidate is None:
            continue
        try:
            return payload.decode(candidate), None
        except (UnicodeDecodeError, LookupError, ValueError, TypeError):
            continue
    try:
        text = payload.decode(codec, errors="replace")
    except (LookupError, ValueError, TypeError):  # a codec that is not a text encoding (e.g. "base64")
        text = _utf8_or_windows_1252(payload)
    return text, f"text not valid in its charset {label[:40]!r}: unreadable bytes replaced"


def _codec(label: str) -> str | None:
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    # Only real text encodings: "base64", "rot13", "zlib" are codecs too, but not charsets.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _utf8_or_windows_1252(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def fix_surrogates(value: str) -> str:
    """Raw 8-bit header bytes reach us as surrogate escapes; read them as UTF-8 (what senders mean today)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def clean_line(value: str) -> str:
    """One line for display: no control or bidi-override characters, whitespace collapsed."""
    value = _BIDI_AND_CONTROLS.sub("", fix_surrogates(value))
    value = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value)
    return " ".join(value.split())


# -- HTML ------------------------------------------------------------------------------------------------


class _ReadableHtml2Text(html2text.HTML2Text):
    """html2text set up for reading rather than Markdown round trips: no wrapping, no emphasis marks, no
    image syntax, mailto links as their text, and no backslash escapes ("1\\." "\\-") in ordinary text."""

    def __init__(self) -> None:
        super().__init__(bodywidth=0)
        self.ignore_emphasis = True
        self.ignore_mailto_links = True
        self.ignore_images = True  # logos and tracking pixels; pasted images are listed as attachments
        self.unicode_snob = True
        self.ignore_tables = True  # mail uses tables for layout; cells read better as plain lines

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        # html2text escapes Markdown-looking text except for entities; treat all text as such.
        super().handle_data(data, entity_char=True)


MAX_HTML = 512 * 1024  # html2text takes about 5 s a megabyte of markup: a longer HTML part is read this far


def html_to_text(html: str) -> str:
    text = _ReadableHtml2Text().handle(html[:MAX_HTML])
    return tidy(re.sub(r"(?m)^\* \* \*$", "---", text))  # html2text's <hr>, as a plain rule


def tidy(text: str) -> str:
    """Line endings unified, trailing spaces and runs of blank lines dropped, no-break spaces made plain."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = text.replace("\u200b", "").replace("\ufeff", "")  # zero-width space, stray byte-order marks
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n").rstrip()


# -- the new part of a reply ------------------------------------------------------------------------------


def new_part(text: str) -> str:
    """The latest reply in ``text``: the quoted earlier messages and the signature cut off.

    mail-parser-reply finds where the quoted thread starts ("On … wrote:", Outlook's "From: … Sent: …").
    Its signature rule is used with a guard: a valediction ("Thanks,", "Best regards") only starts a
    signature when the lines after it look like one, so "Thanks, that fixed it." stays. Indentation the
    library strips is restored from the original lines. Falls back to the whole text when nothing is left.
    """
    whole = tidy(text)
    if not whole.strip() or len(whole) > REPLY_SCAN_LIMIT:
        return whole.strip()
    message = _ReplyMessage(text=whole, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True).read()
    if not message.replies or message.replies[0].headers:  # it starts with the quoted thread: nothing new
        return whole.strip()
    content = message.replies[0].content
    cut = _signature_start(content, message.SIGNATURE_REGEX)
    body = content[:cut].strip() if cut is not None else content
    body = _drop_trailing_quote(_with_indentation(body, whole))
    return body or whole.strip()


class _ReplyMessage(EmailMessage):
    """mail-parser-reply's message, except that a "From: … To: … Subject: …" block only starts the quoted
    thread when it carries a date line (Sent:, Date:, Gesendet:, …) as every client's quote header does;
    without one it is more likely a draft the person wrote for the agent to send."""

    @property
    def HEADER_REGEX(self) -> _DatedHeaders:  # the library's name for it
        return _DatedHeaders(super().HEADER_REGEX)


class _DatedHeaders:
    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def findall(self, text: str) -> list[tuple[str, ...]]:
        found = self.pattern.findall(text)
        return [groups for groups in found if not _undated_block(groups if isinstance(groups, str) else
                                                                 max(groups, key=len))]


def _undated_block(block: str) -> bool:
    fields = [line for line in block.split("\n") if _FIELD_LINE.match(line)]
    return len(fields) >= 2 and not any(_DATE_LINE.match(line) for line in fields)


def _signature_start(content: str, signature: re.Pattern[str]) -> int | None:
    """Where the library's signature match starts, unless that match is a sentence that merely begins like
    a sign-off ("Thanks, that fixed it.", "Sent from my laptop because the VPN was down."): then look on."""
    position = 0
    while position <= len(content):
        match = signature.search(content, position)
        lines = [line for line in match.group().split("\n") if line.strip()] if match else []
        if match is None or not lines:
            return None
        start = match.start() + match.group().find(lines[0])
        first = lines[0].lstrip("> ").strip()
        if set(first) <= set("-_") or _looks_like_signature(first, lines[1:]):  # "-- " and rules are explicit
            return start
        position = start + len(lines[0])
    return None


def _looks_like_signature(first: str, rest: list[str]) -> bool:
    """A short sign-off line ("Thanks," "Best regards, Dana" "Sent from my iPhone") and at most a few short
    lines after it (name, title, phone) with no question or P.S. among them."""
    valediction = any(re.match(pattern, first, flags=re.IGNORECASE) for pattern in _VALEDICTIONS)
    if len(first) > (40 if valediction else 60) or first.endswith((".", "?", "!", ":")):
        return False
    return len(rest) <= 8 and not any(
        len(line) > 80 or line.rstrip().endswith("?") or _POSTSCRIPT.match(line.lstrip("> ")) for line in rest)


def _with_indentation(body: str, whole: str) -> str:
    """The library strips every line; put back the original lines when they match one for one."""
    wanted = body.split("\n")
    original = whole.split("\n")
    start = next((i for i, line in enumerate(original) if line.strip()), 0)
    window = original[start:start + len(wanted)]
    if len(window) == len(wanted) and all(a.strip() == b.strip() for a, b in zip(window, wanted, strict=True)):
        return "\n".join(line.rstrip() for line in window)
    return body


def _drop_trailing_quote(body: str) -> str:
    """A quoted block left at the end (no "On … wrote:" line before it) is the earlier message."""
    lines = body.rstrip().split("\n")
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    return "\n".join(lines[:end]).rstrip()
