"""Secrets never appear in API responses, log lines or events (API-3)."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.services import integrations
from app.services.actors import Actor
from app.services.runtime import Runtime
from models import Integration
from tests.conftest import bearer

BOT_TOKEN = "987654321:AAH-very-secret-bot-token-value"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"


async def test_integration_secret_is_sealed_and_never_shown(
    api: httpx.AsyncClient, runtime: Runtime, admin: Actor, admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # API-3
    caplog.set_level(logging.DEBUG)
    async with runtime.transaction() as session:
        row = await integrations.save_integration(
            session, actor=admin, box=runtime.secrets, kind="telegram",
            secrets={"bot_token": BOT_TOKEN, "webhook_secret": SIGNING},
            public={"bot_username": "dana_bot"},
        )
        row_id = row.id
    async with runtime.transaction() as session:
        stored = await session.get(Integration, row_id)
        assert stored is not None
        assert BOT_TOKEN not in stored.secrets_ciphertext
        assert integrations.open_secrets(runtime.secrets, stored)["bot_token"] == BOT_TOKEN

    responses = [
        await api.get("/v1/tenant/integrations", headers=bearer(admin_token)),
        await api.get("/v1/events", headers=bearer(admin_token)),
        await api.get("/v1/events", params={"type": "integration.updated"}, headers=bearer(admin_token)),
        await api.get("/v1/tokens", headers=bearer(admin_token)),
    ]
    view = responses[0].json()["data"][0]
    assert view["secrets"]["bot_token"] == {"set": True, "last4": BOT_TOKEN[-4:]}
    assert view["public"] == {"bot_username": "dana_bot"}
    assert responses[2].json()["data"], "the update event exists"
    for response in responses:
        assert response.status_code == 200
        assert BOT_TOKEN not in response.text and SIGNING not in response.text
    assert BOT_TOKEN not in caplog.text and SIGNING not in caplog.text


async def test_token_values_appear_only_in_the_minting_response(
    api: httpx.AsyncClient, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:  # API-2, API-3
    caplog.set_level(logging.DEBUG)
    minted = (await api.post("/v1/tokens", json={"subject": "ops"}, headers=bearer(admin_token))).json()
    value = minted["token"]
    await api.get("/v1/agents", headers=bearer(value))
    for path in ("/v1/tokens", "/v1/events", "/v1/tokens?include_revoked=true"):
        assert value not in (await api.get(path, headers=bearer(admin_token))).text
    assert value not in caplog.text and admin_token not in caplog.text
