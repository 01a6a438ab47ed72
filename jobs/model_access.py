"""Which model a run calls, with which key: the default key goes only where the operator sent it.

``IC_MODEL_API_KEY`` is meant for ``IC_MODEL_BASE_URL`` (or, when that is unset, the default
provider's own URL). An agent that names its own ``base_url`` gets no default key: it needs its own
key, stored sealed to the agent's row. Otherwise any admin-typed URL would receive the operator's key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx

from app.crypto import SecretBox, SecretDecryptError
from jobs.egress import UrlNotAllowed, check_model_url
from jobs.llm import ModelConfig, ModelError, ModelReply, build_provider


class AgentModel(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def model(self) -> dict[str, Any]: ...
    @property
    def model_api_key_ciphertext(self) -> str | None: ...


def model_key_binding(agent_id: str) -> str:
    """The associated data of an agent's sealed model key: a copy on another agent fails to open."""
    return f"agent:{agent_id}:model_api_key"


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def own_base_url(agent: AgentModel, default: ModelConfig) -> str:
    """The agent's own base URL when it differs from the operator's; "" when the agent uses the default."""
    own = _norm(str((agent.model or {}).get("base_url") or ""))
    if own and own == _norm(default.base_url):
        return ""
    return own


def model_config_for(agent: AgentModel, default: ModelConfig, secrets: SecretBox | None = None) -> ModelConfig:
    overrides = agent.model or {}
    provider = overrides.get("provider") or default.provider
    same_provider = provider == default.provider
    own_url = own_base_url(agent, default)
    own_key = ""
    if agent.model_api_key_ciphertext and secrets is not None:
        try:
            own_key = secrets.decrypt(agent.model_api_key_ciphertext, bound_to=model_key_binding(agent.id))
        except SecretDecryptError as exc:
            raise ModelError("the agent's model key cannot be opened; set it again", "model_config") from exc
    default_key_fits = same_provider and not own_url
    return ModelConfig(
        provider=provider,
        name=overrides.get("name") or (default.name if same_provider else ""),
        base_url=own_url or (default.base_url if same_provider else ""),
        api_key=own_key or (default.api_key if default_key_fits else ""),
        temperature=overrides.get("temperature", default.temperature),
        max_tokens=overrides.get("max_tokens", default.max_tokens),
        timeout_s=default.timeout_s, retries=default.retries,
    )


def checked_call(config: ModelConfig, http: httpx.AsyncClient, own_url: str, allow_private: bool,
                 messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Callable[[], Awaitable[ModelReply]]:
    """The remote call, preceded by the URL check again (the host's DNS may have changed since the
    save) and connecting to the address that passed it."""

    async def call() -> ModelReply:
        pinned = config
        if own_url:
            try:
                addresses = await check_model_url(own_url, allow_private=allow_private)
            except UrlNotAllowed as exc:
                raise ModelError("the agent's model base URL is not allowed", exc.code, detail=str(exc)) from exc
            if addresses:
                pinned = dataclasses.replace(config, connect_address=addresses[0])
        return await build_provider(pinned, http).complete(messages, tools)

    return call
