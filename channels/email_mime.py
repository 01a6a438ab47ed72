"""One inbound email, as raw RFC 5322 bytes from our Email Worker, read into what the email channel needs.

``parse_mail`` never raises on what a sender (or a broken relay) wrote: whatever cannot be read is left
empty and named in ``problems``. The pieces:

- threading headers (Message-ID, In-Reply-To, References), the decoded subject, From and To;
- the readable body (plain text preferred in multipart/alternative, HTML converted) and the new part
  of a reply (channels/email_text.py), plus attachment metadata, never attachment content;
- ``automated``: why this mail must never wake the agent (auto-replies, bounces, list and bulk mail);
- ``dmarc_pass`` (ID-3): only the topmost Authentication-Results counts, only when the receiving MX
  wrote it, and only a DMARC pass for the From domain; lower copies are what a sender can plant.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import errors
from email.message import Message
from email.parser import BytesParser
from typing import TypeVar

import authres
import authres.dmarc

from channels.email_limits import bounded
from channels.email_text import clean_line, decode_text, fix_surrogates, html_to_text, new_part, tidy

MAX_DEPTH = 30  # nested multiparts beyond this are not read (a crafted message can nest thousands deep)
MAX_PARTS = 10_000  # parts beyond this are not read
_MSG_ID = re.compile(r"<[^<>]*>")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_AUTHRES = authres.FeatureContext(authres.dmarc)
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # bytes, decoded


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    text: str
    full_text: str
    attachments: tuple[Attachment, ...]
    automated: str | None
    dmarc_pass: bool
    problems: tuple[str, ...]


def parse_mail(raw: bytes, *, authserv_id: str = "mx.cloudflare.net") -> ParsedMail:
    raw, cuts = bounded(bytes(raw))  # the standard library's parser is quadratic in places: never give it worse
    problems: list[str] = list(cuts)
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        body_readable = True
    except Exception as exc:  # the parser is lenient; this is for the truly unexpected (a multipart nested
        try:  # thousands deep exhausts its recursion): keep the headers at least
            message = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=True)
            body_readable = False
            problems.append(f"the body is not readable as MIME ({type(exc).__name__})")
        except Exception as exc_again:
            return _unreadable(f"not readable as an email: {type(exc_again).__name__}")

    def guarded(what: str, default: _T, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except Exception as exc:  # never raise on bad input: name what failed and carry on
            problems.append(f"{what} not readable ({type(exc).__name__})")
            return default

    from_address, from_name = guarded("From header", ("", ""), lambda: _sender(message, problems))
    body = guarded("body", _Reader(), lambda: _read_body(message)) if body_readable else _Reader()
    problems.extend(body.problems)
    full_text = guarded("body text", "", lambda: tidy(body.readable()).strip())
    text = guarded("reply text", full_text, lambda: new_part(full_text)) or full_text
    return _storable(ParsedMail(
        message_id=guarded("Message-ID", None, lambda: _first_id(_raw_values(message, "message-id"), wrap=True)),
        in_reply_to=guarded("In-Reply-To", None, lambda: _first_id(_raw_values(message, "in-reply-to"))),
        references=guarded("References", (), lambda: _all_ids(_raw_values(message, "references"))),
        subject=guarded("Subject", "", lambda: _subject(message)),
        from_address=from_address,
        from_name=from_name,
        to_addresses=guarded("To header", (), lambda: _recipients(message)),
        text=text,
        full_text=full_text,
        attachments=tuple(body.attachments),
        automated=guarded("automation headers", "unreadable", lambda: _automated(message)),
        dmarc_pass=guarded("Authentication-Results", False,
                           lambda: _dmarc_pass(message, from_address, authserv_id, problems)),
        problems=tuple(dict.fromkeys(problems)),
    ))


def _storable(mail: ParsedMail) -> ParsedMail:
    """The mail with every text storable: a NUL (quoted-printable ``=00`` decodes to one) is dropped, since
    PostgreSQL refuses it in text, and half a surrogate pair (undecodable header bytes) becomes "?"."""
    def clean(value: str) -> str:
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value

    changed: dict[str, object] = {}
    for name in ParsedMail.__slots__:
        value = getattr(mail, name)
        if isinstance(value, str):
            new: object = clean(value)
        elif isinstance(value, tuple) and value and all(isinstance(item, str) for item in value):
            new = tuple(clean(item) for item in value)
        else:
            continue
        if new != value:
            changed[name] = new
    if any(clean(a.filename) != a.filename for a in mail.attachments):
        changed["attachments"] = tuple(Attachment(clean(a.filename), a.content_type, a.size) for a in mail.attachments)
    return dataclasses.replace(mail, **changed) if changed else mail  # type: ignore[arg-type]


def _unreadable(problem: str) -> ParsedMail:
    return ParsedMail(None, None, (), "", "", "", (), "", "", (), None, False, (problem,))


# -- headers -----------------------------------------------------------------------------------------------


def _raw_values(message: Message, name: str) -> list[str]:
    """The header's values as they arrived (unfolded), in order, top first."""
    return [fix_surrogates(_FOLD.sub("", str(value))) for key, value in message.raw_items() if key.lower() == name]


def _first_id(values: list[str], *, wrap: bool = False) -> str | None:
    for value in values[:1]:
        ids = _all_ids([value])
        if ids:
            return ids[0]
        bare = value.strip()
        if wrap and bare and not any(ch.isspace() or ch in "<>" for ch in bare):
            return f"<{bare}>"  # a Message-ID written without its angle brackets
    return None


def _all_ids(values: list[str]) -> tuple[str, ...]:
    found = ("".join(ident.split()) for value in values for ident in _MSG_ID.findall(value))
    return tuple(dict.fromkeys(ident for ident in found if len(ident) > 2))


def _subject(message: Message) -> str:
    value = message.get("subject")
    return clean_line(str(value)) if value is not None else ""


def _sender(message: Message, problems: list[str]) -> tuple[str, str]:
    """From's address and display name; ("", "") when it cannot be trusted to name one sender."""
    headers = message.get_all("from") or []
    if len(headers) != 1:
        if headers:
            problems.append(f"{len(headers)} From headers: no single sender")
        return "", ""
    header = headers[0]
    mailboxes = header.addresses
    if len(mailboxes) != 1:
        problems.append(f"the From header names {len(mailboxes)} addresses: no single sender")
        return "", ""
    if any(isinstance(defect, errors.InvalidHeaderDefect) for defect in header.defects):
        problems.append("the From header is malformed")
        return "", ""
    mailbox = mailboxes[0]
    address = _address(mailbox.addr_spec)
    if not address:
        problems.append("the From header holds no usable address")
    return address, clean_line(mailbox.display_name)[:200]


def _recipients(message: Message) -> tuple[str, ...]:
    found = (_address(mailbox.addr_spec) for header in message.get_all("to") or [] for mailbox in header.addresses)
    return tuple(dict.fromkeys(address for address in found if address))


def _address(addr_spec: str) -> str:
    address = fix_surrogates(addr_spec).strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(ch.isspace() or ch in "<>()," for ch in address):
        return ""
    return address


# -- DMARC (ID-3) ----------------------------------------------------------------------------------------


def _dmarc_pass(message: Message, from_address: str, authserv_id: str, problems: list[str]) -> bool:
    """True only for a DMARC pass, for the From domain, in the topmost Authentication-Results, written by us.

    The receiving MX adds its header above everything the sender wrote, so only the first one is its
    own; never search further down for a matching one.
    """
    values = _raw_values(message, "authentication-results")
    if not values:
        return False
    try:
        header = _AUTHRES.parse_value(values[0])
    except Exception:  # authres raises its own SyntaxError and friends on malformed input
        problems.append("the topmost Authentication-Results header is malformed")
        return False
    if str(header.authserv_id or "").strip().lower() != authserv_id.strip().lower():
        return False
    domain = from_address.rpartition("@")[2]
    verdicts = [result for result in header.results if str(result.method).lower() == "dmarc"]
    return bool(domain and verdicts) and all(
        str(result.result).lower() == "pass" and str(getattr(result, "header_from", "") or "").lower() == domain
        for result in verdicts)


# -- automated mail ----------------------------------------------------------------------------------------


def _automated(message: Message) -> str | None:
    """Why this mail must not wake the agent, most specific reason first; None for a person's mail."""

    def first(name: str) -> str | None:
        values = _raw_values(message, name)
        return values[0].strip().lower() if values else None

    senders = [address.lower() for _, address in email.utils.getaddresses(_raw_values(message, "from"))]
    return_path = first("return-path")
    content_type = message.get_content_type()
    if (any(address.partition("@")[0] in _BOUNCE_SENDERS for address in senders)
            or (content_type == "multipart/report" and str(message.get_param("report-type", "")).lower()
                == "delivery-status")
            or return_path in ("<>", "<mailer-daemon>")):
        return "bounce"
    auto_submitted = first("auto-submitted")
    auto_submitted = auto_submitted.split(";")[0].strip() if auto_submitted is not None else None
    precedence = (first("precedence") or first("x-precedence") or "").split(";")[0].strip()
    suppress = {token.strip() for token in (first("x-auto-response-suppress") or "").split(",")}
    if (auto_submitted == "auto-replied" or precedence == "auto_reply"
            or any(first(name) not in (None, "no") for name in _AUTO_REPLY_HEADERS)
            # Exchange's out-of-office: X-Auto-Response-Suppress alone is also on ordinary Outlook mail,
            # only together with the inbox-rules loop marker is it an auto-reply.
            or (suppress & {"all", "oof"} and first("x-ms-exchange-inbox-rules-loop") is not None)):
        return "auto-reply"
    if auto_submitted is not None and auto_submitted != "no":
        return "auto-submitted"
    if first("list-id") is not None or first("list-unsubscribe") is not None:
        return "list"
    if precedence in ("bulk", "junk", "list"):
        return "bulk"
    if content_type == "multipart/report":  # read receipts, abuse feedback: machines talking
        return "auto-submitted"
    return None


# -- body and attachments --------------------------------------------------------------------------------


@dataclass
class _Reader:
    # Text parts in order; HTML stays HTML until its alternative is chosen (converting is the costly step).
    texts: list[tuple[str, str]] = field(default_factory=list)  # ("plain" | "html", text)
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    parts: list[int] = field(default_factory=lambda: [0])  # shared between a reader and its sub-readers

    def sub(self) -> _Reader:
        return _Reader(parts=self.parts)

    def readable(self) -> str:
        """The text, HTML converted (once: the result replaces it)."""
        self.texts = [("plain", html_to_text(text) if kind == "html" else text) for kind, text in self.texts]
        return "\n\n".join(text for _, text in self.texts if text.strip())


def _read_body(message: Message) -> _Reader:
    reader = _Reader()
    _walk(message, 0, reader)
    return reader


def _walk(part: Message, depth: int, reader: _Reader) -> None:
    reader.parts[0] += 1
    if reader.parts[0] > MAX_PARTS or depth > MAX_DEPTH:
        reader.problems.append("too many or too deeply nested MIME parts: the rest was not read")
        return
    try:
        _read_part(part, depth, reader)
    except Exception as exc:  # one unreadable part must not cost the others
        reader.problems.append(f"a {_safe_type(part)} part not readable ({type(exc).__name__})")


def _safe_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "MIME"


def _read_part(part: Message, depth: int, reader: _Reader) -> None:
    reader.problems.extend(_defects(part))
    content_type = part.get_content_type()  # parsed on every call: read once
    maintype = content_type.partition("/")[0]
    if maintype == "message":  # forwarded mail, delivery reports: listed, not read
        reader.attachments.append(Attachment(_filename(part), content_type, _size(part)))
        return
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if content_type == "multipart/alternative":
            _alternative(children, depth, reader)
        else:
            for child in children:
                _walk(child, depth + 1, reader)
        return
    filename = _filename(part)
    # A multipart without a usable boundary arrives as one text blob: read it as text, best effort.
    is_body = maintype == "multipart" or content_type in ("text/plain", "text/html")
    if is_body and part.get_content_disposition() != "attachment" and not filename:
        reader.texts.append(("html" if content_type == "text/html" else "plain", _decoded(part, reader)))
        return
    reader.attachments.append(Attachment(filename, content_type, _size(part)))


def _alternative(children: list[Message], depth: int, reader: _Reader) -> None:
    """One rendering of the body: plain text when it has any, else the richest other one (the last).
    Each alternative is read once; attachments inside any of them (images in an HTML multipart/related)
    are listed, the problems of the ones not used are not."""
    candidates = []
    for child in children:
        candidate = reader.sub()
        _walk(child, depth + 1, candidate)
        candidates.append((child.get_content_type() == "text/plain", candidate))
    ordered = [c for plain, c in candidates if plain] + [c for plain, c in reversed(candidates) if not plain]
    chosen = next((candidate for candidate in ordered if candidate.readable().strip()), None)
    for _, candidate in candidates:
        reader.attachments.extend(candidate.attachments)
    if chosen is not None:
        reader.texts.extend(chosen.texts)
        reader.problems.extend(chosen.problems)


def _decoded(part: Message, reader: _Reader) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    text, problem = decode_text(payload, part.get_content_charset())
    if problem:
        reader.problems.append(problem)
    return text


def _filename(part: Message) -> str:
    name = part.get_filename() or ""
    name = re.split(r"[/\\]", clean_line(str(name)))[-1]  # a name, never a path
    return name.strip()[:255]


def _size(part: Message) -> int:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return len(payload)
    inner = part.get_payload()
    if isinstance(inner, list):
        return sum(len(sub.as_bytes()) for sub in inner if isinstance(sub, Message))
    return 0


def _defects(part: Message) -> list[str]:
    """MIME structure problems the parser noticed, in its own words (each defect class documents itself)."""
    described = []
    for defect in getattr(part, "defects", []):
        doc = (type(defect).__doc__ or type(defect).__name__).strip().rstrip(".")
        described.append(f"MIME: {doc[:1].lower()}{doc[1:]}")
    return described
