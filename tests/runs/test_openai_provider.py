"""The OpenAI-compatible provider against a fake Chat Completions server that scripts tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from jobs.runner import RunWorkers
from tests.fakes.openai import FakeOpenAI, raw, run_fake_openai, status, text, tool_call
from tests.runs.conftest import make_smith, start_run, wait_run


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with run_fake_openai() as server:
        yield server


async def _smith(api: httpx.AsyncClient, token: str, fake: FakeOpenAI, **agent: object) -> str:
    _, smith_id = await make_smith(api, token, instructions="Be brief.",
                                   model={"provider": "openai", "name": "gpt-test", "base_url": fake.url},
                                   **agent)
    return smith_id


async def test_tool_calls_then_text(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers,
                                    fake: FakeOpenAI) -> None:  # CHIP-5, ID-1
    fake.push(tool_call("suggest_replies", {"replies": ["Book it", "Not now"]}), text("Shall I book?"))
    smith_id = await _smith(api, admin_token, fake)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "Find me a table"))["id"])
    assert run["output"] == {"text": "Shall I book?", "suggested_replies": ["Book it", "Not now"]}
    assert run["usage"]["model_calls"] == 2 and run["usage"]["input_tokens"] == 20
    first = fake.requests[0]["body"]
    assert first["model"] == "gpt-test"
    assert {t["function"]["name"] for t in first["tools"]} >= {"suggest_replies", "memory_read"}
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system", "system", "user"]
    assert "Be brief." in first["messages"][0]["content"]
    platform = first["messages"][1]["content"]
    assert platform.startswith("[platform ") and '"is_owner": true' in platform and '"channel": "api"' in platform
    second = fake.requests[1]["body"]["messages"]
    assert second[-1]["role"] == "tool" and second[-2]["tool_calls"][0]["function"]["name"] == "suggest_replies"


async def test_history_is_sent_on_the_next_run(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers,
                                               fake: FakeOpenAI) -> None:
    fake.push(text("Hi Dana"), text("You told me your name is Dana"))
    smith_id = await _smith(api, admin_token, fake)
    first = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "I'm Dana"))["id"])
    await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "Who am I?",
                                                      first["metadata"]["thread_id"]))["id"])
    contents = [m["content"] for m in fake.requests[1]["body"]["messages"] if m["role"] in {"user", "assistant"}]
    assert contents == ["I'm Dana", "Hi Dana", "Who am I?"]


async def test_malformed_tool_arguments_and_unknown_tools_go_back_to_the_model(
    api: httpx.AsyncClient, admin_token: str, workers: RunWorkers, fake: FakeOpenAI
) -> None:
    fake.push(tool_call("memory_write", "{not json"), tool_call("rm_rf", {}), text("Sorry about that."))
    smith_id = await _smith(api, admin_token, fake)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "go"))["id"])
    assert run["status"] == "completed"
    tool_results = [m["content"] for m in fake.requests[2]["body"]["messages"] if m["role"] == "tool"]
    assert "not a JSON object" in tool_results[0]
    assert "not available" in tool_results[1]


async def test_retries_on_5xx_and_429(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers,
                                      fake: FakeOpenAI) -> None:
    fake.push(status(500), status(429, {"retry-after": "0"}), text("made it"))
    smith_id = await _smith(api, admin_token, fake)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hi"))["id"])
    assert run["output"]["text"] == "made it"
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ([status(400)], "model_rejected"),
        ([status(503)] * 3, "model_unavailable"),
        ([raw({"choices": []})], "model_bad_response"),
        ([tool_call("memory_list", {})] * 13, "too_many_steps"),
    ],
)
async def test_model_failures_fail_the_run_clearly(api: httpx.AsyncClient, admin_token: str, workers: RunWorkers,
                                                   fake: FakeOpenAI, script: list, code: str) -> None:
    fake.push(*script)
    smith_id = await _smith(api, admin_token, fake)
    run = await wait_run(api, admin_token, (await start_run(api, admin_token, smith_id, "hi"))["id"], wait_s=30)
    assert run["status"] == "failed"
    assert run["error"]["code"] == code
    assert run["error"]["message"]
