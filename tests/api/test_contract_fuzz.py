"""The API keeps its OpenAPI contract (issue 15 §1): a bounded schemathesis pass over /v1/openapi.json.

Every check but positive-data acceptance (the fuzzer's "valid" data still names ids that do not exist,
so refusing it is right), all phases (examples, coverage, fuzzing, stateful), a fixed seed and a bound
on examples per operation. Any finding fails the test and is printed with a curl that reproduces it.

In-process, not over a socket: schemathesis calls the ASGI app (``schemathesis.openapi.from_asgi``) on
its own event-loop thread, and the app's lifespan builds the runtime on that loop, so the database
connections live on the loop that uses them (the ``runtime`` fixture's would belong to pytest's). What
production puts in front of the API stays in front: the size and refusal guard, the security headers.
Providers are a local server that refuses every credential, quickly (no network, no retries to wait).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import hypothesis.configuration
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.python import asgi as schemathesis_asgi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import build_api, limits, security_headers
from app.services import projects, tokens
from app.services.runtime import Runtime, get_runtime, set_runtime
from app.settings import Settings
from channels import REGISTRY
from tests.conftest import bearer

SEED = 15
# Per operation in the fuzzing phase (the coverage phase is bounded by the document); IC_FUZZ_EXAMPLES
# for a longer pass by hand.
MAX_EXAMPLES = int(os.environ.get("IC_FUZZ_EXAMPLES", "5"))
ADMIN_TOKEN = "ic_admin_contract-fuzz-0123456789abcdefghijklmnopqrstuvwxyz"
# Not bearer-token JSON APIs: providers call the webhooks (signed by them; the attack corpora check those)
# and people's browsers follow the Slack install pages. The MCP endpoint is not in the document: JSON-RPC
# with a contract of its own (tests/mcp).
EXCLUDED_TAGS = ["webhooks", "browser"]


class _RefusingProvider(BaseHTTPRequestHandler):
    """Every provider API call is refused as bad credentials, in the shape Slack and Telegram use."""

    def _refuse(self) -> None:
        body = json.dumps({"ok": False, "error": "invalid_auth", "error_code": 401,
                           "description": "Unauthorized"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def provider_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class FuzzedApp:
    """The API as production serves it, with a lifespan that builds the runtime and the admin token."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: ASGIApp = limits.guard(security_headers.wrap(build_api()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.app(scope, receive, self.leaving_event_streams(send))
            return
        while (message := await receive())["type"] == "lifespan.startup":
            runtime = Runtime.build(self.settings)
            set_runtime(runtime)
            async with runtime.transaction() as session:
                project = await projects.ensure_default_project(session)
                await tokens.ensure_admin_token(session, project_id=project.id, value=ADMIN_TOKEN)
            await send({"type": "lifespan.startup.complete"})
        assert message["type"] == "lifespan.shutdown"
        await get_runtime().close()
        set_runtime(None)
        await send({"type": "lifespan.shutdown.complete"})

    @staticmethod
    def leaving_event_streams(send: Send) -> Send:
        """An event stream never ends for a caller it accepts: like a client that reads its status and
        headers and leaves, the answer ends there and the app sees the disconnect (its next messages
        go nowhere), instead of each such case running until a timeout."""
        left = False

        async def send_until_left(message: Message) -> None:
            nonlocal left
            if left:
                return
            await send(message)
            if message["type"] == "http.response.start" and is_event_stream(message):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                left = True

        return send_until_left


def is_event_stream(start: Message) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/event-stream")
               for name, value in start.get("headers", ()))


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {"positive_data_acceptance": {"enabled": False}},
    })


@dataclass
class Findings:
    """What the engine reported: one entry per distinct problem, with the operations it was seen on."""

    cases: int = 0
    problems: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    reproductions: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def record(self, event: events.EngineEvent) -> None:
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            self.cases += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                case = recorder.cases[case_id].value
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    key = (check.name, f"{failure.title}: {failure.message}")
                    self.problems.setdefault(key, set()).add(f"{case.method} {case.path}")
                    self.reproductions.setdefault(key, check.failure_info.code_sample)
        elif isinstance(event, events.NonFatalError):
            self.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            self.errors.append(f"fatal: {event.exception!r}")

    def report(self) -> str:
        lines = [f"{len(self.problems)} finding(s), {len(self.errors)} error(s) over {self.cases} cases"]
        for (check, problem), operations in sorted(self.problems.items()):
            lines += [f"- [{check}] {problem.strip()}", f"  on {', '.join(sorted(operations))}",
                      f"  reproduce: {self.reproductions[(check, problem)]}"]
        lines += [f"- error: {error}" for error in self.errors]
        return "\n".join(lines)


def test_the_api_keeps_its_documented_contract(settings: Settings, provider_url: str, tmp_path: Path) -> None:
    providers = {f.name: provider_url for f in dataclasses.fields(Settings)
                 if f.name.endswith(("_api_url", "_oauth_url"))}
    # refusal_limit 0: no throttling, else the fuzzer's many refused requests would turn every later
    # answer into a 429 and test nothing else.
    fuzzed = FuzzedApp(dataclasses.replace(settings, refusal_limit=0, **providers))
    hypothesis.configuration.set_hypothesis_home_dir(tmp_path / "hypothesis")  # not the repository's cwd
    findings = Findings()
    started = time.monotonic()
    try:
        schema = schemathesis.openapi.from_asgi("/v1/openapi.json", fuzzed, config=fuzz_config())
        for event in from_schema(schema.exclude(tag=EXCLUDED_TAGS)).execute():
            findings.record(event)
    finally:
        schemathesis_asgi.shutdown_lifespans()
        hypothesis.configuration.set_hypothesis_home_dir(None)
    report = findings.report()
    print(f"schemathesis: {report}\n{time.monotonic() - started:.1f} s")
    assert findings.cases > 500, report  # the pass really ran
    assert not findings.problems and not findings.errors, report


# The same contract, checked directly where the fuzzer is unlikely to go (or to go every time).


async def test_every_operation_documents_its_errors_in_the_envelope(api: httpx.AsyncClient) -> None:
    document = (await api.get("/v1/openapi.json")).json()
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    undocumented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = {"413", "429", "500"}
            if "security" in operation:  # a bearer-token operation
                expected |= {"400", "401", "403", "422"} | ({"404"} if "{" in path else set())
            for status in sorted(expected):
                schema = operation["responses"].get(status, {}).get("content", {}).get("application/json", {})
                if schema.get("schema") != envelope:
                    undocumented.append(f"{method.upper()} {path} {status}")
    assert not undocumented, undocumented
    bearer_operations = [op for ops in document["paths"].values() for op in ops.values() if "security" in op]
    assert len(bearer_operations) > 40  # every /v1 operation but the webhooks' and the browser pages'
    for kind in REGISTRY:  # routes generated per channel are documented like the rest
        assert "security" in document["paths"][f"/v1/tenant/{kind}"]["put"]
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 shape is not ours


async def test_event_streams_are_documented_as_event_streams(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/v1/openapi.json")).json()["paths"]
    for path in ("/v1/events/stream", "/v1/runs/{run_id}/stream"):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["text/event-stream"]


async def test_a_wrong_method_answers_405_with_the_allowed_ones(api: httpx.AsyncClient, admin_token: str) -> None:
    for method in ("PUT", "TRACE", "OPTIONS", "HEAD"):
        answer = await api.request(method, "/v1/agents", headers=bearer(admin_token))
        assert answer.status_code == 405, method
        assert answer.headers["allow"] == "GET, POST"
    on_item = await api.post("/v1/agents/agt_missing", headers=bearer(admin_token))
    assert (on_item.status_code, on_item.headers["allow"]) == (405, "DELETE, GET, PATCH")
    assert on_item.json()["error"]["code"] == "method_not_allowed"
    generated = await api.post("/v1/tenant/telegram", headers=bearer(admin_token))
    assert generated.headers["allow"] == "DELETE, GET, PUT"
    unknown = await api.request("TRACE", "/v1/no-such-thing", headers=bearer(admin_token))
    assert unknown.status_code == 404
    assert "allow" not in unknown.headers


async def test_nul_characters_are_refused_alike_on_every_backend(api: httpx.AsyncClient, admin_token: str) -> None:
    """PostgreSQL cannot store U+0000 in text (it answered 500); SQLite stored it. Now both answer 422."""
    headers = bearer(admin_token)
    answers = {
        "name": await api.post("/v1/agents", json={"name": "a\x00b"}, headers=headers),
        "model.name": await api.post("/v1/agents", json={"name": "a", "model": {"name": "\x00"}}, headers=headers),
        "agent_id": await api.get("/v1/agents/agt%00x", headers=headers),
        "cursor": await api.get("/v1/agents", params={"cursor": "c\x00"}, headers=headers),
    }
    for field_name, answer in answers.items():
        assert answer.status_code == 422, (field_name, answer.text)
        assert answer.json()["error"] | {"message": ""} == {"code": "nul_character", "field": field_name,
                                                             "message": ""}
    assert (await api.get("/v1/agents", headers=headers)).json()["data"] == []  # nothing stored
    escaped = await api.post("/v1/agents", json={"name": "a\\u0000b"}, headers=headers)  # a backslash, no NUL
    assert escaped.status_code == 201, escaped.text
