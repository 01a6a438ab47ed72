"""A fake Anthropic Messages API: answers each request with a scripted text and records the
requests, so tests can check how a conversation was laid out for the model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serve import serve


@dataclass
class FakeAnthropic:
    url: str = ""
    replies: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def _messages(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"body": body, "version": request.headers.get("anthropic-version")})
        if not isinstance(body.get("messages"), list) or not body.get("max_tokens"):
            return JSONResponse({"type": "error", "error": {"type": "invalid_request_error"}}, status_code=400)
        text = self.replies.pop(0) if self.replies else "(script ended)"
        return JSONResponse({"id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant",
                             "model": body.get("model"), "content": [{"type": "text", "text": text}],
                             "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}})


@contextlib.asynccontextmanager
async def run_fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    app = Starlette(routes=[Route("/v1/messages", fake._messages, methods=["POST"])])
    async with serve(app) as url:
        fake.url = url
        yield fake
