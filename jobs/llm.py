"""Model providers behind one small interface.

Messages are OpenAI chat-shaped dicts (role system|user|assistant|tool, ``tool_calls`` on
assistant messages, ``tool_call_id`` on tool results); each provider translates.

- ``builtin``: offline and deterministic, the embedded default. It echoes helpfully and follows a
  small command syntax so a person can try tools, chips and approvals without an LLM:
    /chips Yes | No | Later        offer quick replies
    /remember key = value           write a memory entry       /recall key    read one
    /tool NAME {json arguments}     call any tool (e.g. to see an approval pause)
- ``openai``: any OpenAI-compatible Chat Completions endpoint with tool calling (OpenAI, Ollama,
  vLLM, llama.cpp server).
- ``anthropic``: the Messages API with tool use. The first system message is the system prompt;
  each later one (a turn's platform line) leads its own user turn as a text block of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ModelError(Exception):
    """The model could not produce a reply; ``code`` is stable for the run's error.

    ``message`` is ours and safe for anyone who may read the run; ``detail`` holds what the upstream
    said (its error body), which only admins see and the log records: it may echo the request,
    internal host names or key fragments.
    """

    def __init__(self, message: str, code: str = "model_error", detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] | None  # None when the model sent malformed JSON
    raw_arguments: str = ""


@dataclass
class ModelReply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    provider: str = "builtin"
    name: str = ""
    base_url: str = ""
    api_key: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    retries: int = 2
    # Connect here (a vetted IP, jobs/egress.py) instead of resolving the URL's host again; the host
    # still names the server in the Host header and in TLS (SNI and certificate check).
    connect_address: str = ""


class ModelProvider:
    # True when complete() does no I/O: the agent loop then calls it inside the step's transaction
    # instead of committing around it (a remote model's seconds must not hold a transaction open).
    in_process: bool = False

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        raise NotImplementedError


def _parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class BuiltinModel(ModelProvider):
    in_process = True
    _COMMAND = re.compile(r"^/(chips|remember|recall|tool)\b\s*(.*)$", re.S)

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        last = messages[-1] if messages else {"role": "user", "content": ""}
        if last["role"] == "tool":
            return ModelReply(text=self._after_tools(messages))
        text = str(last.get("content") or "").strip()
        names = {t["function"]["name"] for t in tools}
        match = self._COMMAND.match(text)
        if not match:
            words = len(text.split())
            return ModelReply(text=f"You said: {text}" if text else "I'm listening.",
                              usage={"input_tokens": words, "output_tokens": words + 2})
        command, rest = match.group(1), match.group(2).strip()
        call_id = f"call_{len(messages)}"
        if command == "chips":
            labels = [p.strip() for p in rest.split("|") if p.strip()]
            return self._call(call_id, "suggest_replies", {"replies": labels}, names)
        if command == "remember":
            key, _, value = rest.partition("=")
            return self._call(call_id, "memory_write", {"key": key.strip(), "value": value.strip()}, names)
        if command == "recall":
            return self._call(call_id, "memory_read", {"key": rest}, names)
        name, _, raw = rest.partition(" ")
        return ModelReply(text="", tool_calls=[ToolCall(call_id, name, _parse_arguments(raw.strip() or "{}"),
                                                        raw.strip())])

    @staticmethod
    def _call(call_id: str, name: str, args: dict[str, Any], available: set[str]) -> ModelReply:
        return ModelReply(text="", tool_calls=[ToolCall(call_id, name, args, json.dumps(args))])

    @staticmethod
    def _after_tools(messages: list[dict[str, Any]]) -> str:
        results = []
        for message in reversed(messages):
            if message["role"] != "tool":
                break
            results.append(str(message.get("content") or ""))
        summary = " ".join(reversed(results))
        if summary.startswith("Offered"):
            return "Pick one:"
        return summary or "Done."


class OpenAICompatible(ModelProvider):
    def __init__(self, config: ModelConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        body: dict[str, Any] = {"model": self.config.name or "gpt-4o-mini", "messages": messages}
        if tools:
            body["tools"] = tools
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        base = (self.config.base_url or "https://api.openai.com/v1").rstrip("/")
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        data = await _post_json(self.http, f"{base}/chat/completions", body, headers, self.config)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError("the model answered without a message", "model_bad_response") from exc
        calls = [
            ToolCall(id=str(c.get("id") or f"call_{i}"), name=str(c.get("function", {}).get("name", "")),
                     arguments=_parse_arguments(c.get("function", {}).get("arguments")),
                     raw_arguments=str(c.get("function", {}).get("arguments", "")))
            for i, c in enumerate(message.get("tool_calls") or [])
        ]
        usage = data.get("usage") or {}
        return ModelReply(text=message.get("content") or "", tool_calls=calls,
                          usage={"input_tokens": int(usage.get("prompt_tokens", 0)),
                                 "output_tokens": int(usage.get("completion_tokens", 0))})


class Anthropic(ModelProvider):
    def __init__(self, config: ModelConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        system, converted = anthropic_messages(messages)
        body: dict[str, Any] = {
            "model": self.config.name or "claude-sonnet-4-5", "messages": converted,
            "max_tokens": self.config.max_tokens or 1024,
            "tools": [{"name": t["function"]["name"], "description": t["function"]["description"],
                       "input_schema": t["function"]["parameters"]} for t in tools],
        }
        if system:
            body["system"] = system
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        base = (self.config.base_url or "https://api.anthropic.com").rstrip("/")
        headers = {"x-api-key": self.config.api_key, "anthropic-version": "2023-06-01"}
        data = await _post_json(self.http, f"{base}/v1/messages", body, headers, self.config)
        text = "".join(b.get("text", "") for b in data.get("content", []) if b.get("type") == "text")
        calls = [ToolCall(id=b["id"], name=b["name"], arguments=b.get("input") if isinstance(b.get("input"), dict)
                          else None, raw_arguments=json.dumps(b.get("input")))
                 for b in data.get("content", []) if b.get("type") == "tool_use"]
        usage = data.get("usage") or {}
        return ModelReply(text=text, tool_calls=calls,
                          usage={"input_tokens": int(usage.get("input_tokens", 0)),
                                 "output_tokens": int(usage.get("output_tokens", 0))})


def anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The Messages API's ``system`` and ``messages`` for chat-shaped messages.

    Only the first message, the agent's instructions, is the system prompt. Every later system
    message (the platform line naming a turn's verified sender, ID-1) travels with its own turn: a
    text block of its own at the head of the next user message. Merged into one system string, the
    lines of all turns would read as one undated list, and the model could not tell whose is whose.
    """
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    converted: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []  # platform lines waiting for their user turn
    for m in messages[1:] if system else messages:
        if m["role"] == "system":
            notes.append({"type": "text", "text": m["content"]})
        elif m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            if converted and converted[-1]["role"] == "user" and isinstance(converted[-1]["content"], list) \
                    and converted[-1]["content"][0].get("type") == "tool_result":
                converted[-1]["content"].append(block)
            else:
                converted.append({"role": "user", "content": [block]})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["function"]["name"],
                        "input": _parse_arguments(c["function"]["arguments"]) or {}}
                       for c in m["tool_calls"]]
            converted.append({"role": "assistant", "content": blocks})
        elif m["role"] == "user" and notes:
            converted.append({"role": "user", "content": [*notes, {"type": "text", "text": m["content"]}]})
            notes = []
        else:
            converted.append({"role": m["role"], "content": m["content"]})
    if notes:  # a line with no turn after it still belongs to the conversation, not to the system
        converted.append({"role": "user", "content": notes})
    return system, converted


async def _post_json(http: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str],
                     config: ModelConfig) -> dict[str, Any]:
    """POST with retries on 429/5xx and timeouts (honouring Retry-After); clear errors otherwise."""
    last_error, detail = "no attempt made", ""
    extensions: dict[str, Any] = {}
    if config.connect_address:
        target = httpx.URL(url)
        headers = {**headers, "Host": target.netloc.decode("ascii")}
        extensions["sni_hostname"] = target.host
        url = str(target.copy_with(host=config.connect_address))
    for attempt in range(config.retries + 1):
        try:
            response = await http.post(url, json=body, headers=headers, timeout=config.timeout_s,
                                       extensions=extensions)
        except httpx.TimeoutException:
            last_error = f"the model did not answer within {config.timeout_s:.0f}s"
        except httpx.HTTPError as exc:
            last_error = f"could not reach the model: {type(exc).__name__}"
        else:
            if response.status_code < 300:
                try:
                    return dict(response.json())
                except ValueError as exc:
                    raise ModelError("the model answered with invalid JSON", "model_bad_response") from exc
            last_error = f"the model answered HTTP {response.status_code}"
            detail = response.text[:1000]
            if response.status_code not in RETRY_STATUSES:
                raise ModelError(last_error, "model_rejected", detail)
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit() and attempt < config.retries:
                await asyncio.sleep(min(float(retry_after), 30.0))
                continue
        if attempt < config.retries:
            await asyncio.sleep(0.5 * 2**attempt)
    raise ModelError(last_error, "model_unavailable", detail)


def build_provider(config: ModelConfig, http: httpx.AsyncClient) -> ModelProvider:
    if config.provider == "openai":
        return OpenAICompatible(config, http)
    if config.provider == "anthropic":
        return Anthropic(config, http)
    if config.provider == "builtin":
        return BuiltinModel()
    raise ModelError(f"unknown model provider {config.provider!r}", "model_config")
