"""Helpers for provider payloads that every channel shares: reading JSON the product can store, splitting
long text the way a provider counts it, and telling whether a provider on the internet could reach a URL."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from channels.errors import MalformedPayload
from channels.types import RawRequest


def publicly_reachable(url: str) -> bool:
    """Whether a provider on the internet could call this URL: HTTPS and a public host (not localhost,
    a private address or a LAN name). Otherwise a channel that can pull does so instead."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    private_suffixes = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test", ".invalid")
    return "." in host and host != "localhost" and not host.endswith(private_suffixes)


def load_json(raw: RawRequest) -> Any:
    """The body as JSON, or ``MalformedPayload``."""
    return parse_json(raw.body)


# What a JSON text needs to hold a NUL or half a surrogate pair: only then is the parsed value walked.
_NUL_ESCAPE = b"\\u0000"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(text: bytes | str) -> Any:
    """JSON a provider sent, or ``MalformedPayload`` for anything the product cannot store as text: not
    JSON, nested too deeply to parse, a NUL character (PostgreSQL refuses it in text) or half a surrogate
    pair (not encodable as UTF-8). The checks cost a byte scan unless the text holds such an escape."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        # Decoded strictly: json.loads would decode bytes with "surrogatepass", letting half a surrogate pair
        # sent as raw bytes (ED A0 80) through to where a text is used or stored (a 500 there).
        data = json.loads(raw.decode(json.detect_encoding(raw)))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(f"body is not JSON: {type(exc).__name__}") from exc
    try:
        if _NUL_ESCAPE in raw and _holds_nul(data):
            raise MalformedPayload("a text holds a NUL character")
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedPayload("a text holds half a surrogate pair (not UTF-8)") from exc
    except RecursionError as exc:
        raise MalformedPayload("body is nested too deeply") from exc
    return data


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split into pieces each within ``limit``, preferring paragraph, line, then word breaks."""
    chunks: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        cut = _longest_prefix(rest, limit, measure)
        window = rest[:cut]
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at >= cut // 2:  # a break too early would make many tiny messages
                cut = at + len(sep)
                break
        chunk, rest = rest[:cut].rstrip(), rest[cut:]
        if chunk:
            chunks.append(chunk)
    return chunks


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    lo, hi = 1, len(text)  # at least one character, so splitting always advances
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
