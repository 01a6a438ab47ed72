"""The fake Telegram Bot API in its own process, as bench/webhook.py runs it, and the record it reports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from tests.fakes.telegram import FAKE_TOKEN
from tests.integration.conftest import ROOT


def test_runs_as_a_module_and_reports_what_send_message_received() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tests.fakes.telegram", "--port", str(port), "--latency-ms", "30"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"{url}/bot{FAKE_TOKEN}/getMe").json()["result"]["id"] == 123456789
                break
            except httpx.TransportError:  # not listening yet
                assert time.monotonic() < deadline and process.poll() is None, process.stderr
                time.sleep(0.1)
        bot = f"{url}/bot{FAKE_TOKEN}"
        assert httpx.post(f"{bot}/setWebhook", data={"url": "https://bench.example.com/hook",
                                                      "secret_token": "s3cret"}).json()["ok"] is True
        before = time.monotonic()
        for text in ("first", "second"):  # a form body, as python-telegram-bot sends it, then JSON
            assert httpx.post(f"{bot}/sendMessage", data={"chat_id": "42", "text": text}).json()["ok"] is True
        assert httpx.post(f"{bot}/sendMessage", json={"chat_id": 43, "text": "third"}).json()["ok"] is True

        record = httpx.get(f"{url}/_bench/sent", params={"since": 1}).json()
        assert record["count"] == 3
        assert [(m["chat_id"], m["text"]) for m in record["sent"]] == [(42, "second"), (43, "third")]
        # one clock across processes, and --latency-ms held each call before it was recorded
        assert all(before + 0.03 <= m["received_at"] < time.monotonic() for m in record["sent"])
        assert record["webhook"]["secret_token"] == "s3cret"
        assert httpx.get(f"{url}/_bench/sent", params={"since": 99}).json() == {
            "count": 3, "sent": [], "webhook": record["webhook"]}
    finally:
        process.terminate()
        process.wait(10)
