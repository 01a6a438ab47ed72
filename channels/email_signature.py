"""The signature our Email Worker (channels/email_worker.js) puts on each message it posts to the server.

The Worker holds a per-tenant secret (a Worker secret binding). It signs, with HMAC-SHA256, the version,
the timestamp, the envelope sender and recipient and the raw message, each on its own line (an address
cannot hold a newline), so none of them can be changed or replayed later than the window allows:

    v1\\n{timestamp}\\n{envelope from}\\n{envelope to}\\n{raw RFC 5322 bytes}

and sends ``X-IC-Timestamp`` (Unix seconds), ``X-IC-Envelope-From``, ``X-IC-Envelope-To`` and
``X-IC-Signature: v1=<hex>``. The server checks it over the bytes received, before parsing anything.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "x-ic-timestamp"
SIGNATURE_HEADER = "x-ic-signature"
FROM_HEADER = "x-ic-envelope-from"
TO_HEADER = "x-ic-envelope-to"
VERSION = "v1"
WINDOW_S = 300  # a signed message older (or further in the future) than this is refused: no replays


def signed_bytes(timestamp: str, envelope_from: str, envelope_to: str, body: bytes) -> bytes:
    return f"{VERSION}\n{timestamp}\n{envelope_from}\n{envelope_to}\n".encode() + body


def sign(secret: str, timestamp: str, envelope_from: str, envelope_to: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), signed_bytes(timestamp, envelope_from, envelope_to, body), hashlib.sha256)
    return f"{VERSION}={digest.hexdigest()}"


def problem(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    """Why the request is not the Worker's (None when it is). ``headers`` are lower-cased."""
    timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    envelope_from, envelope_to = headers.get(FROM_HEADER, ""), headers.get(TO_HEADER, "")
    if not timestamp or not signature or not envelope_to:
        return "missing signature headers"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "malformed timestamp"
    if abs(now - int(timestamp)) > WINDOW_S:
        return "stale timestamp"
    if "\n" in envelope_from or "\n" in envelope_to or not signature.isascii():
        return "malformed headers"
    expected = sign(secret, timestamp, envelope_from, envelope_to, body)
    return None if hmac.compare_digest(expected, signature) else "bad signature"
