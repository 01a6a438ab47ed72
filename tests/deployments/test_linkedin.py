"""LinkedIn behind its approval gate, end to end (issue 18: LI-1..LI-3, APR-3, CHIP-4, DEP-6): the /v1 API
in-process, real workers and outbox, httpx against the fake LinkedIn (tests/fakes/linkedin.py), whose Page
message shapes are our labelled assumption; the consent and webhook mechanics are LinkedIn's documented ones."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.services.integrations import find_integration, open_secrets
from app.services.runtime import Runtime
from app.settings import Settings
from models import InboundDelivery, Project, Run
from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.fakes import linkedin as fake_li
from tests.fakes.linkedin import FakeLinkedIn, run_fake_linkedin
from tests.fakes.linkedin_kit import CONNECT, PATH, consent, go_live

DANA, DANA_THREAD = fake_li.MEMBER_URN, fake_li.THREAD


@pytest.fixture
async def linkedin() -> AsyncIterator[FakeLinkedIn]:
    async with run_fake_linkedin() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, linkedin: FakeLinkedIn) -> Settings:
    return dataclasses.replace(settings, linkedin_api_url=linkedin.url)


async def put(api: httpx.AsyncClient, token: str, **extra: Any) -> httpx.Response:
    return await api.put("/v1/tenant/linkedin", json={**CONNECT, **extra}, headers=bearer(token))


async def shown(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return dict((await api.get("/v1/tenant/linkedin", headers=bearer(token))).json())


async def catch_all(api: httpx.AsyncClient, token: str) -> httpx.Response:
    agent = (await api.post("/v1/agents", json={"name": "Front desk"}, headers=bearer(token))).json()
    return await api.post("/v1/deployments", headers=bearer(token),
                          json={"target": {"type": "agent", "id": agent["id"]}, "kind": "linkedin"})


async def post_message(api: httpx.AsyncClient, text: str, **fields: Any) -> httpx.Response:
    raw, headers = fake_li.signed_webhook(fake_li.page_message(text, **fields))
    return await api.post(PATH, content=raw, headers=headers)


async def stored_secrets(runtime: Runtime) -> dict[str, str]:
    async with runtime.read() as session:
        project = (await session.execute(select(Project))).scalars().first()
        assert project is not None
        integration = await find_integration(session, project_id=project.id, kind="linkedin")
        assert integration is not None
        assert fake_li.CLIENT_SECRET not in json.dumps(integration.public)  # LI-1: only sealed
        return open_secrets(runtime.secrets, integration)


async def count(runtime: Runtime, table: Any) -> int:
    async with runtime.read() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_configured_it_says_messaging_awaits_consent_and_approval(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # LI-1, LI-3
    answer = await put(api, admin_token)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["messaging_enabled"] is False and body["consent_member"] == ""
    assert body["client_secret"]["set"] is True and fake_li.CLIENT_SECRET not in answer.text
    assert any("consent" in step for step in body["steps"]) and any("approv" in step for step in body["steps"])
    assert (await stored_secrets(runtime))["client_secret"] == fake_li.CLIENT_SECRET

    refused = await put(api, admin_token, messaging_enabled=True)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "linkedin_consent_required"
    switched = await api.patch("/v1/tenant/linkedin", json={"messaging_enabled": True}, headers=bearer(admin_token))
    assert switched.status_code == 409 and switched.json()["error"]["code"] == "linkedin_consent_required"
    created = await catch_all(api, admin_token)
    assert created.status_code == 409 and created.json()["error"]["code"] == "linkedin_messaging_disabled"
    assert "consent" in created.json()["error"]["message"]
    assert (await shown(api, admin_token))["messaging_enabled"] is False


async def test_the_consent_names_the_page_admin_and_is_kept_on_a_new_put(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn, runtime: Runtime
) -> None:  # LI-1
    assert (await put(api, admin_token)).status_code == 200
    done = await consent(api, admin_token, linkedin)
    assert done.status_code == 200 and "consent given" in done.text and fake_li.ADMIN_URN in done.text
    assert linkedin.consents[0]["scope"] == "rw_organization_admin"
    status = await shown(api, admin_token)
    assert status["consent_member"] == fake_li.ADMIN_URN and status["messaging_enabled"] is False
    assert "consent_link_expires_at" not in status
    tokens = await stored_secrets(runtime)
    assert tokens["access_token"].startswith("AQVissued") and tokens["refresh_token"].startswith("AQWissued")
    assert "consent_link_hash" not in tokens

    # Still off until an admin switches it on (after LinkedIn's approval): nothing may be deployed yet.
    created = await catch_all(api, admin_token)
    assert created.status_code == 409 and "switched off" in created.json()["error"]["message"]
    on = await api.patch("/v1/tenant/linkedin", json={"messaging_enabled": True}, headers=bearer(admin_token))
    assert on.status_code == 200 and on.json()["messaging_enabled"] is True

    # A new PUT of the same app and Page (a rotated secret) keeps the consent and the switch.
    again = await put(api, admin_token, client_secret="WPL_AP1.rotatedSecret.Zm9v==")
    assert again.status_code == 200 and again.json()["consent_member"] == fake_li.ADMIN_URN
    assert again.json()["messaging_enabled"] is True
    assert (await stored_secrets(runtime))["access_token"] == tokens["access_token"]
    # Another Page: the consent was not given for it, so it and its tokens go.
    other = await put(api, admin_token, page_urn=fake_li.OTHER_PAGE_URN)
    assert other.status_code == 200 and other.json()["consent_member"] == ""
    assert "access_token" not in await stored_secrets(runtime)


async def test_a_consent_by_someone_who_is_not_a_page_admin_stores_nothing(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn, runtime: Runtime
) -> None:  # LI-1: the token must come from an ADMINISTRATOR of the Page
    assert (await put(api, admin_token)).status_code == 200
    linkedin.admin = fake_li.MEMBER_URN  # a member, not an admin of the Page, opens the link
    refused = await consent(api, admin_token, linkedin)
    assert refused.status_code == 400 and "linkedin_not_page_admin" in refused.text
    assert (await shown(api, admin_token))["consent_member"] == ""
    assert "access_token" not in await stored_secrets(runtime)


async def test_a_cancelled_used_or_foreign_consent_link_is_refused(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn
) -> None:
    assert (await put(api, admin_token)).status_code == 200
    linkedin.deny_consent = True
    cancelled = await consent(api, admin_token, linkedin)
    assert cancelled.status_code == 200 and "Consent cancelled" in cancelled.text
    linkedin.deny_consent = False

    made = (await api.post("/v1/tenant/linkedin/consent", headers=bearer(admin_token))).json()
    path = made["url"].split("://", 1)[1].split("/", 1)[1]
    opened = await api.get(f"/{path}")
    async with httpx.AsyncClient() as browser:
        back = (await browser.get(opened.headers["location"])).headers["location"]
    callback = "/" + back.split("://", 1)[1].split("/", 1)[1]
    api.cookies.clear()  # another browser than the one that opened the link
    foreign = await api.get(callback)
    assert foreign.status_code == 400 and "in this browser" in foreign.text

    assert (await consent(api, admin_token, linkedin)).status_code == 200
    reused = await api.get(f"/{path}")  # the earlier link stopped working when a new one was made
    assert reused.status_code == 404 and "invalid, already used or expired" in reused.text
    unknown = await api.get("/v1/linkedin/consent/default.not-a-token")
    assert unknown.status_code == 404


async def test_while_messaging_is_off_nothing_moves_in_or_out(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn, runtime: Runtime, running: None
) -> None:  # LI-3
    await go_live(api, admin_token, linkedin)
    assert (await catch_all(api, admin_token)).status_code == 201
    assert (await post_message(api, "hello page")).status_code == 200
    await wait_until(lambda: linkedin.sent_to(DANA_THREAD), "the reply while messaging is on")

    off = await api.patch("/v1/tenant/linkedin", json={"messaging_enabled": False}, headers=bearer(admin_token))
    assert off.status_code == 200 and off.json()["messaging_enabled"] is False
    runs, sent = await count(runtime, Run), len(linkedin.sent)
    assert (await post_message(api, "anyone there?")).status_code == 200  # acknowledged: LinkedIn blocks failing URLs
    assert (await post_message(api, "hello?", thread=fake_li.OTHER_THREAD,
                               sender=fake_li.OTHER_MEMBER_URN)).status_code == 200
    assert await count(runtime, Run) == runs and len(linkedin.sent) == sent

    smiths = (await api.get("/v1/smiths", headers=bearer(admin_token))).json()["data"]
    smith_id = next(s["id"] for s in smiths if s["owner_identity"] == f"linkedin:{DANA}")
    write = {"input": [{"role": "user", "content": "/tool linkedin_send_message " + json.dumps({"text": "News!"})}]}
    assert (await api.post(f"/v1/smiths/{smith_id}/runs", json=write, headers=bearer(admin_token))).status_code == 202
    dead = await wait_until(lambda: _dead(api, admin_token), "the refused send")
    assert dead[0]["last_error"].startswith("linkedin_messaging_disabled") and len(linkedin.sent) == sent


async def _dead(api: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return list((await api.get("/v1/deliveries", params={"status": "dead"}, headers=bearer(token))).json()["data"])


async def test_replies_go_back_to_the_conversation_and_the_smith_can_write_first(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn, runtime: Runtime, running: None
) -> None:  # LI-2, DEP-6, CHIP-4
    await go_live(api, admin_token, linkedin)
    assert (await catch_all(api, admin_token)).status_code == 201
    assert (await post_message(api, "Do you ship to Greece?")).status_code == 200
    reply = await wait_until(lambda: linkedin.sent_to(DANA_THREAD), "the reply")
    assert reply[0]["organization"] == fake_li.PAGE_URN and "Do you ship to Greece?" in reply[0]["text"]

    smiths = (await api.get("/v1/smiths", headers=bearer(admin_token))).json()["data"]
    smith_id = next(s["id"] for s in smiths if s["owner_identity"] == f"linkedin:{DANA}")
    call = json.dumps({"text": "Your order shipped.", "suggested_replies": ["Track it", "Thanks"]})
    started = await api.post(f"/v1/smiths/{smith_id}/runs", headers=bearer(admin_token),
                             json={"input": [{"role": "user", "content": f"/tool linkedin_send_message {call}"}]})
    assert started.status_code == 202, started.text
    first = await wait_until(lambda: [m for m in linkedin.sent_to(DANA) if "shipped" in m["text"]],
                             "the message the smith wrote first, to its member")
    assert first[0]["text"] == "Your order shipped.\n\n- Track it\n- Thanks"  # chips as a bulleted list

    sent = len(linkedin.sent)
    raw, headers = fake_li.signed_webhook(fake_li.page_message("forged"), "WPL_AP1.notTheSecret.AAAA==")
    refused = await api.post(PATH, content=raw, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_signature"
    deliveries = await count(runtime, InboundDelivery)
    unsigned = await api.post(PATH, content=raw, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401 and await count(runtime, InboundDelivery) == deliveries
    assert len(linkedin.sent) == sent


async def test_the_webhook_answers_linkedins_validation_challenge(
    api: httpx.AsyncClient, admin_token: str
) -> None:  # LI-1 (documented test vector's mechanics, with the fake's secret)
    assert (await put(api, admin_token)).status_code == 200
    code = "3b6e1d6e-1c52-4d2c-9a55-1b1a0b6f2f10"
    answer = await api.get(PATH, params={"challengeCode": code})
    assert answer.status_code == 200
    assert answer.json() == {"challengeCode": code, "challengeResponse": fake_li.challenge_response(code)}
    forged = await api.get(PATH, params={"challengeCode": "hmacsha256={}"})
    assert forged.status_code in (400, 401, 403)


async def test_a_conversation_bound_by_address_has_the_owner_the_admin_named(
    api: httpx.AsyncClient, admin_token: str, linkedin: FakeLinkedIn
) -> None:  # ID-3 on LinkedIn: no conversation proves its owner, so an admin names them
    await go_live(api, admin_token, linkedin)
    agent = (await api.post("/v1/agents", json={"name": "PA"}, headers=bearer(admin_token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Dana's PA"},
                            headers=bearer(admin_token))).json()
    target = {"type": "smith", "id": smith["id"]}
    bad = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": target, "kind": "linkedin", "address": DANA_THREAD, "setup": {"owner_member": "Dana"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "setup.owner_member"
    no_address = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": target, "kind": "linkedin", "setup": {"owner_member": DANA}})
    assert no_address.status_code == 422 and no_address.json()["error"]["code"] == "invalid_setup"
    made = await api.post("/v1/deployments", headers=bearer(admin_token), json={
        "target": target, "kind": "linkedin", "address": DANA_THREAD, "setup": {"owner_member": DANA}})
    assert made.status_code == 201, made.text
    assert made.json()["owner_identity"] == f"linkedin:{DANA}" and made.json()["status"] == "active"
