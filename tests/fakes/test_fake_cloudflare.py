"""The fake Cloudflare API itself, driven with httpx the way the EMAIL channel calls it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.cloudflare import (
    ACCOUNT_ID,
    API_TOKEN,
    DOMAIN,
    EMAIL_ROUTING_RULES_EDIT,
    EMAIL_ROUTING_RULES_READ,
    EMAIL_SENDING_EDIT,
    ROUTING_ERROR_CODE,
    WORKERS_SCRIPTS_EDIT,
    ZONE_ID,
    ZONE_READ,
    ZONE_SETTINGS_READ,
    FakeCloudflare,
    run_fake_cloudflare,
)

WORKER = "ingram-email"
WORKER_JS = "export default {\n  async email(message, env, ctx) {\n    await fetch(env.WEBHOOK_URL);\n  },\n};\n"
SEND_PATH = f"/accounts/{ACCOUNT_ID}/email/sending/send"
RULES_PATH = f"/zones/{ZONE_ID}/email/routing/rules"


@pytest.fixture
async def cloudflare() -> AsyncIterator[FakeCloudflare]:
    async with run_fake_cloudflare() as fake:
        yield fake


@pytest.fixture
async def api(cloudflare: FakeCloudflare) -> AsyncIterator[httpx.AsyncClient]:
    async with client(cloudflare) as http:
        yield http


def client(fake: FakeCloudflare, token: str = API_TOKEN) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=fake.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def error_of(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def upload_parts(metadata: dict[str, Any] | None, *, module: str | None = "worker.js",
                 content_type: str = "application/javascript+module") -> dict[str, Any]:
    """The multipart body a client builds: a JSON "metadata" part and the module part named by main_module."""
    files: dict[str, Any] = {}
    if metadata is not None:
        files["metadata"] = ("metadata.json", json.dumps(metadata), "application/json")
    if module is not None:
        files[module] = (module, WORKER_JS, content_type)
    return files


def worker_metadata(**extra: Any) -> dict[str, Any]:
    return {"main_module": "worker.js", "compatibility_date": "2026-01-01",
            "bindings": [{"type": "secret_text", "name": "WEBHOOK_SECRET", "text": "s3cret"},
                         {"type": "plain_text", "name": "WEBHOOK_URL", "text": "https://ingram.example/v1/email"}],
            **extra}


async def upload_worker(api: httpx.AsyncClient, name: str = WORKER) -> httpx.Response:
    return await api.put(f"/accounts/{ACCOUNT_ID}/workers/scripts/{name}", files=upload_parts(worker_metadata()))


def worker_rule(address: str, script: str = WORKER) -> dict[str, Any]:
    return {"actions": [{"type": "worker", "value": [script]}],
            "matchers": [{"type": "literal", "field": "to", "value": address}],
            "enabled": True, "name": "Ingram assistant", "priority": 0}


def mail(**overrides: Any) -> dict[str, Any]:
    return {"to": "dana@example.com", "from": {"address": f"pa@{DOMAIN}", "name": "Acme PA"}, "subject": "Re: Hello",
            "text": "Hi Dana", "headers": {"In-Reply-To": "<m1@example.com>", "References": "<m1@example.com>"},
            **overrides}


# -- tokens -----------------------------------------------------------------------------------------

async def test_verify_a_user_token(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    response = await api.get("/user/tokens/verify")
    body = response.json()
    assert response.status_code == 200 and body["success"] is True and body["errors"] == []
    assert body["result"] == {"id": cloudflare.tokens[API_TOKEN].id, "status": "active"}
    assert cloudflare.requests == [("GET", "/client/v4/user/tokens/verify")]


async def test_an_unknown_token_is_invalid(cloudflare: FakeCloudflare) -> None:
    async with client(cloudflare, "NotAToken0123456789") as stranger:
        assert error_of(await stranger.get("/user/tokens/verify")) == (401, 1000, "Invalid API Token")
        assert error_of(await stranger.get("/zones")) == (403, 10000, "Authentication error")


async def test_account_owned_tokens_verify_under_their_account(cloudflare: FakeCloudflare,
                                                               api: httpx.AsyncClient) -> None:
    cloudflare.add_token("cfat_AccountOwned123", account_owned=True)
    async with client(cloudflare, "cfat_AccountOwned123") as owned:
        assert (await owned.get(f"/accounts/{ACCOUNT_ID}/tokens/verify")).json()["result"]["status"] == "active"
        assert error_of(await owned.get("/user/tokens/verify"))[:2] == (401, 1000)
        assert error_of(await owned.get("/accounts/0000/tokens/verify"))[:2] == (401, 1000)
    assert error_of(await api.get(f"/accounts/{ACCOUNT_ID}/tokens/verify"))[:2] == (401, 1000)


async def test_malformed_or_missing_authorization(cloudflare: FakeCloudflare) -> None:
    async with httpx.AsyncClient(base_url=cloudflare.api_url) as bare:
        assert error_of(await bare.get("/zones"))[:2] == (400, 9106)
        response = await bare.get("/zones", headers={"Authorization": "Token abc"})
        assert error_of(response)[:2] == (400, 6003)
        assert response.json()["errors"][0]["error_chain"][0]["code"] == 6111


async def test_a_revoked_token_stops_working(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.revoke_token(API_TOKEN)
    assert error_of(await api.get("/user/tokens/verify"))[:2] == (401, 1000)


async def test_unknown_paths_answer_in_the_envelope(api: httpx.AsyncClient) -> None:
    assert error_of(await api.get("/nowhere"))[:2] == (404, 7000)
    assert error_of(await api.patch(RULES_PATH))[:2] == (405, 10405)


# -- zones and routing settings ------------------------------------------------------------------------

async def test_find_the_zone_by_name_in_the_account(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.add_zone("other.example", account_id="another-account")
    found = (await api.get("/zones", params={"name": DOMAIN, "account.id": ACCOUNT_ID})).json()
    assert [(z["id"], z["name"], z["status"], z["account"]["id"]) for z in found["result"]] == [
        (ZONE_ID, DOMAIN, "active", ACCOUNT_ID)]
    assert found["result_info"]["total_count"] == 1
    for params in ({"name": "other.example", "account.id": ACCOUNT_ID}, {"name": DOMAIN, "account.id": "x"}):
        assert (await api.get("/zones", params=params)).json()["result"] == []


async def test_routing_settings_follow_set_routing(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    settings = (await api.get(f"/zones/{ZONE_ID}/email/routing")).json()["result"]
    assert (settings["name"], settings["enabled"], settings["status"]) == (DOMAIN, True, "ready")
    assert settings["tag"] == settings["id"]
    cloudflare.set_routing(False)
    settings = (await api.get(f"/zones/{ZONE_ID}/email/routing")).json()["result"]
    assert (settings["enabled"], settings["status"]) == (False, "unconfigured")
    cloudflare.set_routing(True, status="misconfigured")
    assert (await api.get(f"/zones/{ZONE_ID}/email/routing")).json()["result"]["status"] == "misconfigured"


async def test_unknown_or_foreign_zones(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    assert error_of(await api.get("/zones/ffff/email/routing"))[:2] == (400, 7003)
    foreign = cloudflare.add_zone("other.example", account_id="another-account")
    assert error_of(await api.get(f"/zones/{foreign.id}/email/routing")) == (403, 10000, "Authentication error")


@pytest.mark.parametrize(("method", "path", "granted", "needed"), [
    ("GET", "/zones", {EMAIL_SENDING_EDIT}, ZONE_READ),
    ("GET", f"/zones/{ZONE_ID}/email/routing", {EMAIL_ROUTING_RULES_EDIT}, ZONE_SETTINGS_READ),
    ("GET", RULES_PATH, {ZONE_READ}, EMAIL_ROUTING_RULES_READ),
    ("POST", RULES_PATH, {EMAIL_ROUTING_RULES_READ}, EMAIL_ROUTING_RULES_EDIT),
    ("PUT", f"{RULES_PATH}/catch_all", {EMAIL_ROUTING_RULES_READ}, EMAIL_ROUTING_RULES_EDIT),
    ("PUT", f"/accounts/{ACCOUNT_ID}/workers/scripts/{WORKER}", {ZONE_READ}, WORKERS_SCRIPTS_EDIT),
])
async def test_each_call_needs_its_permission(cloudflare: FakeCloudflare, method: str, path: str,
                                              granted: set[str], needed: str) -> None:
    cloudflare.add_token("Narrow0123456789", granted)
    cloudflare.add_token("Enough0123456789", {needed})
    async with client(cloudflare, "Narrow0123456789") as narrow, client(cloudflare, "Enough0123456789") as enough:
        assert error_of(await narrow.request(method, path, json={})) == (403, 10000, "Authentication error")
        assert (await enough.request(method, path, json={})).status_code != 403


async def test_write_spelling_of_permissions_is_accepted(cloudflare: FakeCloudflare) -> None:
    cloudflare.add_token("Writer0123456789", {"Zone Read", "Zone Settings Write"})
    async with client(cloudflare, "Writer0123456789") as writer:
        assert (await writer.get(f"/zones/{ZONE_ID}/email/routing")).status_code == 200


# -- Worker upload ---------------------------------------------------------------------------------------

async def test_upload_a_worker_module_with_bindings(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    response = await upload_worker(api)
    result = response.json()["result"]
    assert response.status_code == 200 and result["id"] == WORKER and result["handlers"] == ["fetch", "email"]
    assert result["etag"] and result["modified_on"].endswith("Z")
    script = cloudflare.scripts[WORKER]
    assert script["source"] == WORKER_JS and script["metadata"] == worker_metadata()
    assert script["bindings"] == {"WEBHOOK_SECRET": "s3cret", "WEBHOOK_URL": "https://ingram.example/v1/email"}
    again = (await upload_worker(api)).json()["result"]  # an upload replaces the script in place
    assert again["created_on"] == result["created_on"] and list(cloudflare.scripts) == [WORKER]


@pytest.mark.parametrize("as_file", [False, True])
async def test_metadata_as_a_part_without_filename(cloudflare: FakeCloudflare, api: httpx.AsyncClient,
                                                   as_file: bool) -> None:
    """``data={"metadata": ...}`` and ``files={"metadata": (None, ..., "application/json")}`` both work."""
    metadata, module = json.dumps(worker_metadata()), ("worker.js", WORKER_JS, "application/javascript+module")
    parts: dict[str, Any] = {"files": {"metadata": (None, metadata, "application/json"), "worker.js": module}} \
        if as_file else {"data": {"metadata": metadata}, "files": {"worker.js": module}}
    response = await api.put(f"/accounts/{ACCOUNT_ID}/workers/scripts/{WORKER}", **parts)
    assert response.status_code == 200 and cloudflare.scripts[WORKER]["bindings"]["WEBHOOK_SECRET"] == "s3cret"


@pytest.mark.parametrize(("files", "message"), [
    (upload_parts(None), "could not read content for part metadata"),
    (upload_parts(worker_metadata(), module=None), "Uncaught TypeError: Main module name is not present in bundle."),
    (upload_parts(worker_metadata(main_module="index.js")), "Main module name is not present"),
    (upload_parts(worker_metadata(), content_type="application/octet-stream"), "application/javascript+module"),
    (upload_parts(worker_metadata(bindings=[{"type": "secret_text", "name": "S"}])), "needs a text"),
])
async def test_malformed_uploads_are_refused(cloudflare: FakeCloudflare, api: httpx.AsyncClient,
                                             files: dict[str, Any], message: str) -> None:
    status, code, text = error_of(await api.put(f"/accounts/{ACCOUNT_ID}/workers/scripts/{WORKER}", files=files))
    assert (status, code) == (400, 10021) and message in text
    assert cloudflare.scripts == {}


async def test_upload_checks_the_body_name_and_account(api: httpx.AsyncClient) -> None:
    path = f"/accounts/{ACCOUNT_ID}/workers/scripts/{WORKER}"
    assert error_of(await api.put(path, content=WORKER_JS, headers={"Content-Type": "application/javascript"}))[:2] \
        == (400, 10021)
    bad_name = await api.put(f"/accounts/{ACCOUNT_ID}/workers/scripts/Bad_Name", files=upload_parts(worker_metadata()))
    assert error_of(bad_name)[:2] == (400, 10016)
    elsewhere = await api.put(f"/accounts/other/workers/scripts/{WORKER}", files=upload_parts(worker_metadata()))
    assert error_of(elsewhere) == (403, 10000, "Authentication error")


# -- routing rules -----------------------------------------------------------------------------------------

async def test_create_list_and_delete_a_worker_rule(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    await upload_worker(api)
    created = (await api.post(RULES_PATH, json=worker_rule(f"pa@{DOMAIN}"))).json()["result"]
    assert created["id"] and created["tag"] == created["id"]
    sent_fields = ("actions", "matchers", "enabled", "name", "priority")
    assert {k: created[k] for k in sent_fields} == worker_rule(f"pa@{DOMAIN}")
    assert cloudflare.rules[ZONE_ID] == [created]
    listed = (await api.get(RULES_PATH)).json()
    assert [r["id"] for r in listed["result"]] == [created["id"], cloudflare.catch_all[ZONE_ID]["id"]]
    assert listed["result"][-1]["matchers"] == [{"type": "all"}]  # Cloudflare lists the catch-all too
    assert (await api.get(f"{RULES_PATH}/{created['id']}")).json()["result"] == created
    deleted = await api.delete(f"{RULES_PATH}/{created['id']}")
    assert deleted.status_code == 200 and deleted.json()["result"]["id"] == created["id"]
    assert cloudflare.rules[ZONE_ID] == []
    assert error_of(await api.delete(f"{RULES_PATH}/{created['id']}"))[:2] == (404, ROUTING_ERROR_CODE)


@pytest.mark.parametrize(("rule", "message"), [
    (worker_rule(f"pa@{DOMAIN}", script="not-uploaded"), "does not exist"),
    (worker_rule("pa@elsewhere.example"), f"not an address on {DOMAIN}"),
    (worker_rule("not-an-address"), "not an address"),
    ({**worker_rule(f"pa@{DOMAIN}"), "matchers": [{"type": "all"}]}, "catch_all"),
    ({**worker_rule(f"pa@{DOMAIN}"), "actions": []}, "actions"),
    ({**worker_rule(f"pa@{DOMAIN}"), "actions": [{"type": "forward", "value": ["x@y.example"]}]}, "verified"),
    ({**worker_rule(f"pa@{DOMAIN}"), "actions": [{"type": "bounce"}]}, "action type"),
])
async def test_invalid_rules_are_refused(cloudflare: FakeCloudflare, api: httpx.AsyncClient, rule: dict[str, Any],
                                         message: str) -> None:
    await upload_worker(api)
    status, code, text = error_of(await api.post(RULES_PATH, json=rule))
    assert (status, code) == (400, ROUTING_ERROR_CODE) and message in text
    assert cloudflare.rules[ZONE_ID] == []


async def test_a_duplicate_address_is_refused(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    await upload_worker(api)
    assert (await api.post(RULES_PATH, json=worker_rule(f"pa@{DOMAIN}"))).status_code == 200
    duplicate = await api.post(RULES_PATH, json=worker_rule(f"PA@{DOMAIN.upper()}"))
    assert error_of(duplicate) == (400, ROUTING_ERROR_CODE, "Rule with the same matcher already exists")
    assert len(cloudflare.rules[ZONE_ID]) == 1


async def test_forward_and_drop_actions(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.verified_destinations.add("owner@example.com")
    forward = {**worker_rule(f"owner@{DOMAIN}"), "actions": [{"type": "forward", "value": ["owner@example.com"]}]}
    drop = {**worker_rule(f"spam@{DOMAIN}"), "actions": [{"type": "drop"}]}
    assert (await api.post(RULES_PATH, json=forward)).status_code == 200
    assert (await api.post(RULES_PATH, json=drop)).status_code == 200


async def test_the_catch_all(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    default = (await api.get(f"{RULES_PATH}/catch_all")).json()["result"]
    assert (default["enabled"], default["actions"], default["matchers"]) == (False, [{"type": "drop"}],
                                                                             [{"type": "all"}])
    catch_all = {"actions": [{"type": "worker", "value": [WORKER]}], "matchers": [{"type": "all"}], "enabled": True}
    assert error_of(await api.put(f"{RULES_PATH}/catch_all", json=catch_all))[:2] == (400, ROUTING_ERROR_CODE)
    await upload_worker(api)
    bad_matcher = {**catch_all, "matchers": [{"type": "literal", "field": "to", "value": f"a@{DOMAIN}"}]}
    assert error_of(await api.put(f"{RULES_PATH}/catch_all", json=bad_matcher))[:2] == (400, ROUTING_ERROR_CODE)
    updated = (await api.put(f"{RULES_PATH}/catch_all", json=catch_all)).json()["result"]
    assert (updated["enabled"], updated["actions"]) == (True, catch_all["actions"])
    assert updated["id"] == default["id"] and cloudflare.catch_all[ZONE_ID] == updated
    assert (await api.get(f"{RULES_PATH}/catch_all")).json()["result"] == updated


async def test_a_rule_body_must_be_a_json_object(api: httpx.AsyncClient) -> None:
    response = await api.post(RULES_PATH, content=b"not json", headers={"Content-Type": "application/json"})
    assert error_of(response)[:2] == (400, 10026)


# -- Email Sending ----------------------------------------------------------------------------------------

async def test_send_records_the_mail(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    before = time.monotonic()
    response = await api.post(SEND_PATH, json=mail(to=["dana@example.com", "Sam <sam@example.com>"],
                                                   cc="lee@example.com", html="<p>Hi</p>", reply_to=f"pa@{DOMAIN}"))
    assert response.status_code == 200 and response.json()["success"] is True
    assert response.json()["result"] == {"delivered": ["dana@example.com", "sam@example.com", "lee@example.com"],
                                         "permanent_bounces": [], "queued": []}
    [sent] = cloudflare.sent
    assert sent["subject"] == "Re: Hello" and sent["headers"]["In-Reply-To"] == "<m1@example.com>"
    assert before <= sent["received_at"] <= time.monotonic()


async def test_bounces_and_the_optional_message_id(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.bounces.add("gone@example.com")
    cloudflare.return_message_id = True
    result = (await api.post(SEND_PATH, json=mail(to=["gone@example.com", "dana@example.com"]))).json()["result"]
    assert (result["delivered"], result["permanent_bounces"]) == (["dana@example.com"], ["gone@example.com"])
    assert result["message_id"].startswith("<") and result["message_id"].endswith(f"@{DOMAIN}>")


@pytest.mark.parametrize(("overrides", "code", "message", "pointer"), [
    ({"from": "pa@elsewhere.example"}, 10202, "email.sending.error.sender_not_verified", "/from"),
    ({"headers": {"From": f"x@{DOMAIN}"}}, 10001, "email.sending.error.header_use_api_field", "/headers/From"),
    ({"headers": {"subject": "x"}}, 10001, "email.sending.error.header_use_api_field", "/headers/subject"),
    ({"headers": {"Message-ID": "<a@b.c>"}}, 10001, "email.sending.error.header_not_allowed", "/headers/Message-ID"),
    ({"headers": {"X-Bad Name": "1"}}, 10001, "email.sending.error.header_name_invalid", "/headers/X-Bad Name"),
    ({"headers": {"X-Empty": " "}}, 10001, "email.sending.error.header_value_invalid", "/headers/X-Empty"),
    ({"headers": {"X-Long": "x" * 2049}}, 10001, "email.sending.error.header_value_too_long", "/headers/X-Long"),
    ({"subject": ""}, 10001, "email.sending.error.invalid_request_schema", "/subject"),
    ({"text": None}, 10001, "email.sending.error.invalid_request_schema", "/text"),
    ({"to": ["ok@example.com", "nope"]}, 10001, "email.sending.error.invalid_request_schema", "/to/1"),
    ({"to": [f"p{i}@example.com" for i in range(51)]}, 10001, "email.sending.error.too_many_recipients", "/to"),
])
async def test_invalid_sends_are_refused(cloudflare: FakeCloudflare, api: httpx.AsyncClient,
                                         overrides: dict[str, Any], code: int, message: str, pointer: str) -> None:
    response = await api.post(SEND_PATH, json=mail(**overrides))
    assert error_of(response) == (400, code, message)
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    assert cloudflare.sent == []


async def test_allowed_headers_pass(api: httpx.AsyncClient) -> None:
    headers = {"in-reply-to": "<a@b.c>", "References": "<a@b.c>", "Auto-Submitted": "auto-replied",
               "X-Ingram-Conversation": "c-1"}
    assert (await api.post(SEND_PATH, json=mail(headers=headers))).status_code == 200


async def test_a_too_big_send(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    response = await api.post(SEND_PATH, json=mail(text="x" * (5 * 1024 * 1024)))
    assert error_of(response) == (400, 10200, "email.sending.error.email.too_big")


async def test_sending_disabled_or_not_onboarded(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.set_sending(enabled=False)
    assert error_of(await api.post(SEND_PATH, json=mail())) == (
        403, 10203, "email.sending.error.email.sending_disabled")
    cloudflare.set_sending(onboarded=False)
    assert error_of(await api.post(SEND_PATH, json=mail()))[:2] == (400, 10202)


async def test_send_authentication(cloudflare: FakeCloudflare) -> None:
    cloudflare.add_token("NoSending0123456789", {ZONE_READ})
    async with client(cloudflare, "NoSending0123456789") as narrow, client(cloudflare, "Unknown0123456") as unknown:
        assert error_of(await narrow.post(SEND_PATH, json=mail())) == (
            403, 10102, "email.sending.error.authentication.forbidden")
        assert error_of(await unknown.post(SEND_PATH, json=mail())) == (
            401, 10101, "email.sending.error.authentication.unauthorized")
    async with client(cloudflare) as api:
        assert error_of(await api.post("/accounts/other/email/sending/send", json=mail()))[:2] == (403, 10102)


async def test_forced_failures_then_recovery(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.fail_sends(10004, 429, times=2)
    cloudflare.fail_sends(10203, 403)
    for _ in range(2):
        throttled = await api.post(SEND_PATH, json=mail())
        assert error_of(throttled) == (429, 10004, "email.sending.error.throttled")
        assert throttled.headers["retry-after"] == "1"
    disabled = await api.post(SEND_PATH, json=mail())
    assert error_of(disabled) == (403, 10203, "email.sending.error.email.sending_disabled")
    assert "retry-after" not in disabled.headers
    assert cloudflare.sent == []
    assert (await api.post(SEND_PATH, json=mail())).status_code == 200 and len(cloudflare.sent) == 1


async def test_forced_failure_defaults(cloudflare: FakeCloudflare, api: httpx.AsyncClient) -> None:
    cloudflare.fail_sends(10004, retry_after=7)  # the documented status when none is given
    cloudflare.fail_sends(10002)
    throttled = await api.post(SEND_PATH, json=mail())
    assert error_of(throttled)[:2] == (429, 10004) and throttled.headers["retry-after"] == "7"
    assert error_of(await api.post(SEND_PATH, json=mail())) == (500, 10002, "email.sending.error.internal_server")


async def test_invalid_requests_are_refused_before_forced_failures(cloudflare: FakeCloudflare,
                                                                   api: httpx.AsyncClient) -> None:
    cloudflare.fail_sends(10004, 429)
    assert error_of(await api.post(SEND_PATH, json=mail(subject="")))[:2] == (400, 10001)
    assert error_of(await api.post(SEND_PATH, json=mail()))[:2] == (429, 10004)
