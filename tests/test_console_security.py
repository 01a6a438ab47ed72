"""The console's browser-facing defences (issue 13 §5): the socket accepts only IC_PUBLIC_URL's
origin, the session cookie is Secure over https, and every HTTP answer carries CSP and framing
headers.

The real app is built in a subprocess (Reflex reads rxconfig.py and the settings once per process),
without compiling the frontend (Reflex's internal __REFLEX_SKIP_COMPILE) and without its lifespan (no database work).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from app.api.security_headers import API_POLICY, SecurityHeaders, console_policy
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json
from starlette.testclient import TestClient
import rxconfig
from app.app import app
from app.state.auth import AuthState

client = TestClient(app())
socket = {}
for origin in ORIGINS:
    try:
        upgrade = {"origin": origin, "upgrade": "websocket", "connection": "Upgrade"}
        with client.websocket_connect("/_event/?EIO=4&transport=websocket", headers=upgrade) as ws:
            socket[origin] = ws.receive_text().startswith("0{")
    except Exception:
        socket[origin] = False
headers = {path: dict(client.get(path).headers) for path in ("/v1/health", "/login", "/v1/docs")}
print("PROBE" + json.dumps({
    "cors": list(rxconfig.config.cors_allowed_origins),
    "hops": rxconfig.config.trusted_proxy_hops,
    "secure_cookie": AuthState.get_fields()["session_token"].default.secure,
    "socket": socket,
    "headers": headers,
}))
"""


def probe(tmp_path: Path, public_url: str, origins: list[str], **env: str) -> dict[str, Any]:
    code = f"ORIGINS = {origins!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "IC_PUBLIC_URL": public_url, "IC_DATA_DIR": str(tmp_path),
             # No frontend compile (nor npm): the backend's routes and socket are what is probed.
             "__REFLEX_SKIP_COMPILE": "yes", "REFLEX_WEB_WORKDIR": str(tmp_path / "web"),
             "REFLEX_STATES_WORKDIR": str(tmp_path / "states"), **env},
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert line, f"the probe failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return dict(json.loads(line.removeprefix("PROBE")))


def test_https_console_socket_cookie_and_headers(tmp_path: Path) -> None:
    public, foreign = "https://console.example.com", "https://evil.example"
    seen = probe(tmp_path, f"{public}/", [public, foreign], IC_TRUSTED_PROXY_HOPS="1")
    assert seen["cors"] == [public]
    assert seen["hops"] == 1
    assert seen["socket"] == {public: True, foreign: False}  # a foreign page cannot drive the console
    assert seen["secure_cookie"] is True
    api, page, docs = (seen["headers"][p] for p in ("/v1/health", "/login", "/v1/docs"))
    assert api["content-security-policy"] == API_POLICY
    assert "connect-src 'self' wss://console.example.com" in page["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in docs["content-security-policy"]
    for headers in (api, page, docs):
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_plain_http_on_loopback_keeps_the_cookie_usable_and_the_aliases(tmp_path: Path) -> None:
    seen = probe(tmp_path, "http://localhost:8000", ["http://127.0.0.1:8000", "http://localhost:9999"])
    assert seen["secure_cookie"] is False  # a Secure cookie would never be sent over http
    assert seen["cors"] == ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]
    assert seen["socket"] == {"http://127.0.0.1:8000": True, "http://localhost:9999": False}


@pytest.fixture
def settings_https() -> Settings:
    import dataclasses
    return dataclasses.replace(Settings.from_env(), public_url="https://console.example.com")


async def test_a_routes_own_headers_win_and_sockets_pass_untouched(settings_https: Settings) -> None:
    async def own(_: object) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Content-Security-Policy": "sandbox"})

    async def api(_: object) -> JSONResponse:
        return JSONResponse({})

    app = SecurityHeaders(Starlette(routes=[Route("/own", own), Route("/v1/x", api)]), settings_https)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/own")).headers["content-security-policy"] == "sandbox"
        assert (await client.get("/own")).headers["x-frame-options"] == "DENY"
        assert (await client.get("/v1/x")).headers["content-security-policy"] == API_POLICY
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await SecurityHeaders(inner, settings_https)({"type": "websocket", "path": "/_event"}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket"]
    assert "wss://console.example.com" in console_policy(settings_https)
