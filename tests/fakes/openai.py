"""A fake OpenAI-compatible Chat Completions server that replays a script.

Each scripted step is one response: ``text("...")``, ``tool_call(name, args)`` (or several),
``status(500)`` for an HTTP error, or ``raw({...})`` for any body. Requests are recorded so tests
can check what the model saw. When the script runs out, it answers ``"(script ended)"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serve import serve


def text(content: str) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": content}}


def tool_call(name: str, arguments: dict[str, Any] | str, *more: tuple[str, dict[str, Any] | str]) -> dict[str, Any]:
    calls = [(name, arguments), *more]
    return {"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{i}_{name}", "type": "function",
         "function": {"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}}
        for i, (n, a) in enumerate(calls)]}}


def status(code: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": code, "headers": headers or {}}


def raw(body: dict[str, Any]) -> dict[str, Any]:
    return {"raw": body}


@dataclass
class FakeOpenAI:
    url: str = ""
    script: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # When set, answers each request from its messages (for concurrent runs) instead of the script.
    responder: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    latency_s: float = 0.0

    def push(self, *steps: dict[str, Any]) -> None:
        self.script.extend(steps)

    async def _completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"body": body, "authorization": request.headers.get("authorization"),
                              "host": request.headers.get("host")})
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.responder is not None:
            step = self.responder(body["messages"])
        else:
            step = self.script.pop(0) if self.script else text("(script ended)")
        if "status" in step:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=step["status"],
                                headers=step["headers"])
        if "raw" in step:
            return JSONResponse(step["raw"])
        return JSONResponse({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", **step}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        })


@contextlib.asynccontextmanager
async def run_fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    app = Starlette(routes=[Route("/v1/chat/completions", fake._completions, methods=["POST"])])
    async with serve(app) as url:
        fake.url = f"{url}/v1"
        yield fake
