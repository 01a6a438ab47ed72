"""Email on the customer's Cloudflare, end to end (issue 18: EM-1..EM-3, ID-3, ID-5, REN-1, CHIP-4,
APR-3, DEP-6): the /v1 API in-process, real workers and outbox, httpx against the fake Cloudflare API
(tests/fakes/cloudflare.py), and raw messages posted, signed, as our Email Worker posts them."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.services.integrations import find_integration, open_secrets
from app.services.runtime import Runtime
from app.settings import Settings
from channels.email_signature import sign
from models import InboundDelivery, Message, Project, Run
from tests.conftest import bearer
from tests.deployments.conftest import PUBLIC_HTTPS, wait_until
from tests.fakes import cloudflare as fake_cf
from tests.fakes.cloudflare import FakeCloudflare, run_fake_cloudflare

DOMAIN = fake_cf.DOMAIN
INBOX = f"pa@{DOMAIN}"
DANA = "dana@example.com"
CONNECT = {"account_id": fake_cf.ACCOUNT_ID, "api_token": fake_cf.API_TOKEN, "domain": DOMAIN}


@pytest.fixture
async def cloudflare() -> AsyncIterator[FakeCloudflare]:
    async with run_fake_cloudflare() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, cloudflare: FakeCloudflare) -> Settings:
    return dataclasses.replace(settings, cloudflare_api_url=cloudflare.api_url)


async def connect(api: httpx.AsyncClient, token: str, **extra: Any) -> httpx.Response:
    return await api.put("/v1/tenant/email", json={**CONNECT, **extra}, headers=bearer(token))


async def inbox(api: httpx.AsyncClient, token: str, **setup: Any) -> dict[str, Any]:
    """Connect, make a smith and give it the inbox pa@ (owned by Dana unless ``setup`` says otherwise)."""
    assert (await connect(api, token)).status_code == 200
    agent = (await api.post("/v1/agents", json={"name": "Concierge", **setup.pop("agent", {})},
                            headers=bearer(token))).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Dana's PA"},
                            headers=bearer(token))).json()
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith["id"]}, "kind": "email",
        "setup": {"mode": "provision", "handle": "pa", "owner_email": DANA, **setup}})
    assert created.status_code == 201, created.text
    return {"smith_id": smith["id"], "deployment": created.json()}


def literal_rules(cloudflare: FakeCloudflare) -> list[dict[str, Any]]:
    """The zone's rules for single addresses (Cloudflare lists the catch-all among them too)."""
    return [r for r in cloudflare.rules[fake_cf.ZONE_ID] if r["matchers"][0]["type"] == "literal"]


async def webhook_secret(runtime: Runtime) -> str:
    async with runtime.read() as session:
        project = (await session.execute(select(Project))).scalars().first()
        assert project is not None
        integration = await find_integration(session, project_id=project.id, kind="email")
        assert integration is not None
        return open_secrets(runtime.secrets, integration)["webhook_secret"]


def mail(text: str, *, sender: str = DANA, to: str = INBOX, subject: str = "Plans", dmarc: str = "pass",
         message_id: str | None = None, headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    domain = sender.rpartition("@")[2]
    message["Authentication-Results"] = (f"mx.cloudflare.net; dkim=pass header.d={domain}; spf=pass "
                                         f"smtp.mailfrom={sender}; dmarc={dmarc} header.from={domain}")
    message["From"] = f"Dana Reyes <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message.as_bytes()


async def post_mail(api: httpx.AsyncClient, runtime: Runtime, raw: bytes, *, to: str = INBOX,
                    sender: str = DANA, secret: str | None = None, at: int | None = None) -> httpx.Response:
    timestamp = str(at or int(time.time()))
    signature = sign(secret or await webhook_secret(runtime), timestamp, sender, to, raw)
    return await api.post("/v1/email/webhook/default", content=raw, headers={
        "content-type": "message/rfc822", "x-ic-timestamp": timestamp, "x-ic-envelope-from": sender,
        "x-ic-envelope-to": to, "x-ic-signature": signature})


async def test_connecting_checks_cloudflare_and_deploys_the_worker(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime
) -> None:  # EM-1
    answer = await connect(api, admin_token)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["configured"] and view["zone_id"] == fake_cf.ZONE_ID and view["routing_enabled"] is True
    assert fake_cf.API_TOKEN not in answer.text
    script = cloudflare.scripts[view["worker_name"]]
    assert script["bindings"]["IC_WEBHOOK_URL"] == f"{PUBLIC_HTTPS}/v1/email/webhook/default"
    assert script["bindings"]["IC_SECRET"] == await webhook_secret(runtime)
    assert int(script["bindings"]["IC_MAX_BYTES"]) == runtime.settings.max_email_bytes
    assert "setReject" in script["source"]  # the Worker kept in this repository


async def test_connecting_says_exactly_what_is_missing(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare
) -> None:  # EM-1, issue 18 bad input
    cloudflare.set_routing(False)
    off = await connect(api, admin_token)
    assert off.status_code == 400 and off.json()["error"]["code"] == "email_routing_disabled"
    assert "Email Routing" in off.json()["error"]["message"]
    cloudflare.set_routing(True)
    cloudflare.add_token("limited-token-0123456789abcdef", permissions={
        fake_cf.ZONE_READ, fake_cf.ZONE_SETTINGS_READ, fake_cf.EMAIL_ROUTING_RULES_EDIT})  # no Workers Scripts
    limited = await connect(api, admin_token, api_token="limited-token-0123456789abcdef")
    assert limited.status_code == 400 and limited.json()["error"]["code"] == "cloudflare_permission_missing"
    assert "Workers Scripts" in limited.json()["error"]["message"]
    wrong = await connect(api, admin_token, domain="not-ours.example")
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "domain"
    bad = await connect(api, admin_token, api_token="not-a-real-token-0123456789")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "api_token"
    assert (await api.get("/v1/tenant/email", headers=bearer(admin_token))).json()["configured"] is False


async def test_an_inbox_answers_in_the_thread_from_its_own_address(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime, running: None
) -> None:  # EM-2, EM-3
    made = await inbox(api, admin_token, display_name="Dana's PA")
    deployment = made["deployment"]
    assert deployment["status"] == "active" and deployment["address"] == INBOX and deployment["owner_email"] == DANA
    assert [r["matchers"] for r in literal_rules(cloudflare)] == [[{"type": "literal", "field": "to", "value": INBOX}]]
    first = make_msgid(domain="example.com")
    raw = mail("Can we meet on Friday?\n\nDana", message_id=first, subject="Friday")
    answer = await post_mail(api, runtime, raw)
    assert answer.status_code == 200, answer.text
    sent = await wait_until(lambda: cloudflare.sent[0] if cloudflare.sent else None, "the reply")
    body = sent
    assert body["to"] == DANA and body["from"] == {"address": INBOX, "name": "Dana's PA"}
    assert body["subject"] == "Re: Friday" and "Can we meet on Friday?" in body["text"]
    assert body["headers"] == {"In-Reply-To": first, "References": first, "Auto-Submitted": "auto-replied"}
    assert (await post_mail(api, runtime, raw)).status_code == 200  # the Worker retried: nothing new
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(Run))).scalar_one() == 1

    renamed = await api.patch(f"/v1/deployments/{deployment['id']}", json={"display_name": "Dana's Assistant"},
                              headers=bearer(admin_token))
    assert renamed.status_code == 200, renamed.text  # REN-1: the From name
    await post_mail(api, runtime, mail("And Saturday?", subject="Re: Friday",
                                       headers={"In-Reply-To": first, "References": first}))
    second = await wait_until(lambda: cloudflare.sent[1] if len(cloudflare.sent) > 1 else None, "the second reply")
    assert second["from"] == {"address": INBOX, "name": "Dana's Assistant"}
    assert second["subject"] == "Re: Friday"

    gone = await api.delete(f"/v1/deployments/{deployment['id']}", headers=bearer(admin_token))
    assert gone.status_code == 204 and literal_rules(cloudflare) == []


async def test_unsigned_stale_or_altered_posts_store_nothing(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime
) -> None:  # issue 18 bad input: 401, nothing stored
    await inbox(api, admin_token)
    raw = mail("hello")
    unsigned = await api.post("/v1/email/webhook/default", content=raw, headers={"content-type": "message/rfc822"})
    stale = await post_mail(api, runtime, raw, at=int(time.time()) - 3600)
    wrong_secret = await post_mail(api, runtime, raw, secret="not-the-secret")
    timestamp = str(int(time.time()))
    altered = await api.post("/v1/email/webhook/default", content=raw + b"x", headers={
        "x-ic-timestamp": timestamp, "x-ic-envelope-from": DANA, "x-ic-envelope-to": INBOX,
        "x-ic-signature": sign(await webhook_secret(runtime), timestamp, DANA, INBOX, raw)})
    assert [r.status_code for r in (unsigned, stale, wrong_secret, altered)] == [401, 401, 401, 401]
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(InboundDelivery))).scalar_one() == 0


async def test_auto_replies_and_bounces_never_wake_the_smith(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime
) -> None:  # issue 18: no mail loops
    await inbox(api, admin_token)
    out_of_office = mail("I am away until Monday.", subject="Automatic reply: Plans",
                         headers={"Auto-Submitted": "auto-replied"})
    bulk = mail("Our newsletter", headers={"Precedence": "bulk", "List-Id": "<news.example.com>"})
    for raw in (out_of_office, bulk):
        assert (await post_mail(api, runtime, raw)).status_code == 200
    async with runtime.read() as session:
        assert (await session.execute(select(func.count()).select_from(Run))).scalar_one() == 0


async def test_only_a_dmarc_verified_owner_is_the_owner_and_may_approve_in_words(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime, running: None
) -> None:  # ID-3, ID-5, APR-3 (a text prompt: reply YES or NO)
    made = await inbox(api, admin_token, agent={"approval_required_tools": ["memory_write"]})
    await post_mail(api, runtime, mail("/remember plan = launch"))
    prompt = await wait_until(lambda: next((s for s in cloudflare.sent if "Reply YES" in s["text"]), None),
                              "the approval prompt")
    assert prompt["to"] == DANA
    # The same words from a forged From (no DMARC pass) decide nothing.
    await post_mail(api, runtime, mail("yes", dmarc="fail"))
    forged = await wait_until(lambda: len(cloudflare.sent) >= 2 and cloudflare.sent[-1], "the forged mail's answer")
    assert "Remembered" not in forged["text"]
    runs = (await api.get("/v1/runs", params={"status": "awaiting_approval"}, headers=bearer(admin_token))).json()
    assert len(runs["data"]) == 1
    await post_mail(api, runtime, mail("Yes, go ahead."))
    await wait_until(lambda: any("Remembered plan." in s["text"] for s in cloudflare.sent), "the tool's reply")
    memory = (await api.get(f"/v1/smiths/{made['smith_id']}/memory", headers=bearer(admin_token))).json()["data"]
    assert [m["key"] for m in memory] == ["plan"] and memory[0]["value"].startswith("launch")  # then the subject


async def test_the_smith_writes_first_with_email_send(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime, running: None
) -> None:  # DEP-6
    made = await inbox(api, admin_token)
    call = json.dumps({"to": "sam@example.org", "subject": "Hello from Dana's PA", "body": "Shall we meet?"})
    started = await api.post(f"/v1/smiths/{made['smith_id']}/runs", headers=bearer(admin_token),
                             json={"input": [{"role": "user", "content": f"/tool email_send {call}"}]})
    assert started.status_code == 202, started.text
    sent = await wait_until(lambda: next((s for s in cloudflare.sent if s["to"] == "sam@example.org"), None),
                            "the email")
    assert sent["subject"] == "Hello from Dana's PA" and sent["text"] == "Shall we meet?"
    assert sent["from"]["address"] == INBOX and sent["headers"] == {"Auto-Submitted": "auto-generated"}


async def test_the_catch_all_takes_the_domains_other_addresses_and_mints_per_sender(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime, running: None
) -> None:  # EM-4, DEP-4
    assert (await connect(api, admin_token)).status_code == 200
    agent = (await api.post("/v1/agents", json={"name": "Front desk"}, headers=bearer(admin_token))).json()
    created = await api.post("/v1/deployments", headers=bearer(admin_token),
                             json={"target": {"type": "agent", "id": agent["id"]}, "kind": "email"})
    assert created.status_code == 201, created.text
    rule = cloudflare.catch_all[fake_cf.ZONE_ID]
    assert rule["enabled"] and rule["actions"] == [{"type": "worker", "value": [created_worker(cloudflare)]}]
    hello = f"hello@{DOMAIN}"
    await post_mail(api, runtime, mail("Do you ship to Lisbon?", to=hello), to=hello)
    await post_mail(api, runtime, mail("A forged hello", sender="ceo@bank.example", to=hello, dmarc="fail"),
                    to=hello, sender="ceo@bank.example")
    sent = await wait_until(lambda: cloudflare.sent[0] if cloudflare.sent else None, "the reply")
    assert sent["to"] == DANA and sent["from"]["address"] == hello
    smiths = (await api.get("/v1/smiths", headers=bearer(admin_token))).json()["data"]
    assert [s["owner_identity"] for s in smiths] == [f"email:{DANA}"]  # the forged sender minted nobody
    removed = await api.delete(f"/v1/deployments/{created.json()['id']}", headers=bearer(admin_token))
    assert removed.status_code == 204 and cloudflare.catch_all[fake_cf.ZONE_ID]["enabled"] is False


def created_worker(cloudflare: FakeCloudflare) -> str:
    [name] = cloudflare.scripts
    return str(name)


async def test_a_nul_in_a_mail_is_dropped_and_the_mail_is_answered(
    api: httpx.AsyncClient, admin_token: str, cloudflare: FakeCloudflare, runtime: Runtime, running: None
) -> None:  # issue 18 bad input: a malformed body yields a run with what could be read (PostgreSQL refuses NULs)
    await inbox(api, admin_token)
    raw = mail("hello =00 there", message_id="<nul\x00id@example.com>").replace(
        b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: quoted-printable")
    assert b"quoted-printable" in raw and b"\x00" in raw
    answer = await post_mail(api, runtime, raw)
    assert answer.status_code == 200, answer.text
    sent = await wait_until(lambda: cloudflare.sent[0] if cloudflare.sent else None, "the reply")
    assert sent["headers"]["In-Reply-To"] == "<nulid@example.com>"
    async with runtime.read() as session:
        keys = (await session.execute(select(InboundDelivery.dedupe_key))).scalars().all()
        texts = (await session.execute(select(Message.content).where(Message.role == "user"))).scalars().all()
    assert keys == ["mid:<nulid@example.com>"]
    assert len(texts) == 1 and "hello  there" in texts[0] and "\x00" not in texts[0]
