"""The fake Slack's App Manifest API, configuration tokens and assistant pane, driven by slack_sdk's AsyncWebClient."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    BOT_TOKEN,
    CLIENT_ID,
    DM_CHANNEL_ID,
    GENERAL_CHANNEL_ID,
    INSTALLER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    FakeSlack,
    assistant_thread_context_changed_event,
    assistant_thread_started_event,
    event_envelope,
    run_fake_slack,
)

REDIRECT = "https://bots.example.com/v1/slack/oauth/callback"
TWELVE_HOURS = 12 * 3600
# slack_sdk's async oauth_v2_access builds aiohttp.BasicAuth, which aiohttp 3.14 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


def smith_manifest(name: str = "Ada Smith") -> dict[str, Any]:
    """A per-smith app as issue 17 mints it: the shared app's manifest plus the assistant pane."""
    return {
        "display_information": {"name": name, "description": "Your agent, in Slack."},
        "features": {"bot_user": {"display_name": name, "always_online": True},
                     "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                                  "messages_tab_read_only_enabled": False},
                     "assistant_view": {"assistant_description": "Ask Ada anything.",
                                        "suggested_prompts": [{"title": "Summarise", "message": "Sum up #general"}]}},
        "oauth_config": {"redirect_urls": [REDIRECT],
                         "scopes": {"bot": ["app_mentions:read", "assistant:write", "chat:write", "im:history",
                                            "im:read", "im:write", "channels:history", "channels:read",
                                            "groups:history", "groups:read", "users:read"],
                                    "user": ["search:read"]}},
        "settings": {"event_subscriptions": {"request_url": "https://bots.example.com/v1/slack/webhook/ada",
                                             "bot_events": ["app_mention", "message.im", "message.channels",
                                                            "message.groups", "app_uninstalled", "tokens_revoked",
                                                            "assistant_thread_started",
                                                            "assistant_thread_context_changed"]},
                     "interactivity": {"is_enabled": True,
                                       "request_url": "https://bots.example.com/v1/slack/interactivity/ada"},
                     "org_deploy_enabled": False, "socket_mode_enabled": False, "token_rotation_enabled": False},
    }


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with run_fake_slack() as fake:
        yield fake


def client(fake: FakeSlack, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url)


async def api_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    data = caught.value.response.data
    assert isinstance(data, dict) and data["ok"] is False
    return data


async def consent(fake: FakeSlack, authorize_url: str, redirect_uri: str = REDIRECT) -> httpx.Response:
    """Open an app's authorize URL like a browser, click "Allow"; the redirect back (or the error page)."""
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{authorize_url}&{urlencode({'redirect_uri': redirect_uri, 'state': 'st-9'})}")
        allow = re.search(r"id='allow' href='([^']+)'", page.text)
        if allow is None:
            return page
        return await http.get(fake.url + allow.group(1).replace("&amp;", "&"))


async def create_and_install(fake: FakeSlack, config_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """apps.manifest.create, then the OAuth install with the new app's credentials: (created, oauth answer)."""
    created = (await client(fake, config_token).apps_manifest_create(manifest=smith_manifest())).data
    back = await consent(fake, created["oauth_authorize_url"])
    assert back.status_code == 302
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    credentials = created["credentials"]
    answer = (await client(fake).oauth_v2_access(client_id=credentials["client_id"],
                                                 client_secret=credentials["client_secret"], code=code,
                                                 redirect_uri=REDIRECT)).data
    return created, answer


# -- configuration tokens ---------------------------------------------------------------------------

async def test_rotate_spends_the_refresh_token_and_hands_back_a_new_pair(slack: FakeSlack) -> None:
    token, refresh, exp = slack.issue_config_token()
    assert token.startswith("xoxe.xoxp-1-") and refresh.startswith("xoxe-1-")
    assert abs(exp - (time.time() + TWELVE_HOURS)) < 5
    rotated = (await client(slack).tooling_tokens_rotate(refresh_token=refresh)).data
    assert rotated["ok"] is True and (rotated["team_id"], rotated["user_id"]) == (TEAM_ID, INSTALLER_ID)
    assert rotated["token"].startswith("xoxe.xoxp-1-") and rotated["token"] != token
    assert rotated["refresh_token"].startswith("xoxe-1-") and rotated["refresh_token"] != refresh
    assert rotated["exp"] - rotated["iat"] == TWELVE_HOURS
    assert "token" not in slack.calls_to("tooling.tokens.rotate")[0]  # no token needed, none sent
    # The old refresh token is spent; the new one works once.
    assert (await api_error(client(slack).tooling_tokens_rotate(refresh_token=refresh)))["error"] == \
        "invalid_refresh_token"
    again = (await client(slack).tooling_tokens_rotate(refresh_token=rotated["refresh_token"])).data
    assert (await api_error(client(slack).tooling_tokens_rotate(refresh_token=rotated["refresh_token"])))[
        "error"] == "invalid_refresh_token"
    # Every access token issued so far works until its own exp.
    for access in (token, rotated["token"], again["token"]):
        assert (await client(slack, access).apps_manifest_validate(manifest=smith_manifest())).data == \
            {"ok": True, "errors": []}
    slack.revoke_refresh_token(again["refresh_token"])
    assert (await api_error(client(slack).tooling_tokens_rotate(refresh_token=again["refresh_token"])))[
        "error"] == "invalid_refresh_token"


async def test_rotate_failure_injection_leaves_the_refresh_token_usable(slack: FakeSlack) -> None:
    _, refresh, _ = slack.issue_config_token("T0TEAM", INSTALLER_ID)
    slack.fail_next("tooling.tokens.rotate", "invalid_refresh_token")
    assert (await api_error(client(slack).tooling_tokens_rotate(refresh_token=refresh)))["error"] == \
        "invalid_refresh_token"
    assert (await client(slack).tooling_tokens_rotate(refresh_token=refresh))["ok"] is True
    slack.rate_limit_next("tooling.tokens.rotate", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client(slack).tooling_tokens_rotate(refresh_token="xoxe-1-whatever")
    assert limited.value.response.status_code == 429 and limited.value.response.headers["Retry-After"] == "7"


async def test_config_tokens_authenticate_the_manifest_api_only(slack: FakeSlack) -> None:
    token, _, _ = slack.issue_config_token()
    expired, refresh, _ = slack.issue_config_token()
    slack.expire_config_token(expired)
    cases = [(client(slack, expired), "token_expired"), (client(slack, "xoxe.xoxp-1-nope"), "invalid_auth"),
             (client(slack), "not_authed"), (client(slack, BOT_TOKEN), "not_allowed_token_type")]
    for caller, error in cases:
        assert (await api_error(caller.apps_manifest_create(manifest=smith_manifest())))["error"] == error
    assert (await api_error(client(slack, token).chat_postMessage(channel=DM_CHANNEL_ID, text="hi")))["error"] == \
        "not_allowed_token_type"
    assert slack.calls_to("apps.manifest.create")[0]["token"] == expired  # sent as a bearer header, read back
    # An expired token's refresh token still rotates.
    assert (await client(slack).tooling_tokens_rotate(refresh_token=refresh))["ok"] is True
    assert not slack.manifests


# -- apps.manifest.create and the install of the new app ----------------------------------------------

async def test_create_gives_credentials_that_install_through_oauth(slack: FakeSlack) -> None:
    token, _, _ = slack.issue_config_token()
    created, answer = await create_and_install(slack, token)
    app_id, credentials = created["app_id"], created["credentials"]
    assert re.fullmatch(r"A0[A-Z0-9]{9}", app_id) and (created["team_id"], created["team_domain"]) == \
        (TEAM_ID, TEAM_DOMAIN)
    assert re.fullmatch(r"\d{10}\.\d{13}", credentials["client_id"]) and credentials["client_id"] != CLIENT_ID
    assert re.fullmatch(r"[0-9a-f]{32}", credentials["client_secret"])
    assert re.fullmatch(r"[0-9a-f]{32}", credentials["signing_secret"]) and len(credentials["verification_token"]) \
        == 24
    authorize = urlsplit(created["oauth_authorize_url"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == slack.authorize_url
    query = parse_qs(authorize.query)
    assert query["client_id"] == [credentials["client_id"]] and "assistant:write" in query["scope"][0].split(",")
    assert query["user_scope"] == ["search:read"]
    assert isinstance(slack.calls_to("apps.manifest.create")[0]["manifest"], str)  # a JSON string on the wire
    assert slack.manifests[app_id] == smith_manifest()
    # The install yields a bot token of the new app, with a bot user of its own.
    assert answer["app_id"] == app_id and answer["access_token"].startswith("xoxb-")
    assert answer["authed_user"]["access_token"].startswith("xoxp-")
    who = (await client(slack, answer["access_token"]).auth_test()).data
    assert who["team_id"] == TEAM_ID and who["user_id"] == answer["bot_user_id"]
    assert slack.tokens[answer["access_token"]].app_id == app_id
    posted = await client(slack, answer["access_token"]).chat_postMessage(channel=INSTALLER_ID, text="Hello")
    assert posted["message"]["app_id"] == app_id


async def test_authorize_holds_a_manifest_app_to_its_redirect_urls(slack: FakeSlack) -> None:
    token, _, _ = slack.issue_config_token()
    created = (await client(slack, token).apps_manifest_create(manifest=smith_manifest())).data
    elsewhere = await consent(slack, created["oauth_authorize_url"], "https://evil.example/v1/slack/oauth/callback")
    assert elsewhere.status_code == 400 and "redirect_uri did not match" in elsewhere.text
    below = await consent(slack, created["oauth_authorize_url"], REDIRECT + "/deeper")
    assert below.status_code == 302 and below.headers["location"].startswith(REDIRECT + "/deeper?code=")
    # The default app has no configured redirect URLs and keeps accepting any.
    default = await consent(slack, f"{slack.authorize_url}?client_id={CLIENT_ID}&scope=chat:write",
                            "https://anything.example/cb")
    assert default.status_code == 302


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = manifest
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return change


def _drop_assistant_scope(manifest: dict[str, Any]) -> None:
    manifest["oauth_config"]["scopes"]["bot"].remove("assistant:write")


@pytest.mark.parametrize(("change", "pointer"), [
    (_set("display_information/name", ""), "/display_information/name"),
    (_set("display_information/name", "x" * 36), "/display_information/name"),
    (_set("features/bot_user/display_name", "y" * 81), "/features/bot_user/display_name"),
    (_set("oauth_config/scopes/bot/2", "chat:wrote"), "/oauth_config/scopes/bot/2"),
    (_set("oauth_config/scopes/user/0", "admin"), "/oauth_config/scopes/user/0"),
    (_set("oauth_config/scopes/bot/0", "search:read"), "/oauth_config/scopes/bot/0"),  # a user scope only
    (_set("settings/event_subscriptions/bot_events/1", "message.everything"),
     "/settings/event_subscriptions/bot_events/1"),
    (_set("oauth_config/redirect_urls/0", "http://bots.example.com/cb"), "/oauth_config/redirect_urls/0"),
    (_set("settings/event_subscriptions/request_url", "http://bots.example.com/ev"),
     "/settings/event_subscriptions/request_url"),
    (_set("settings/interactivity/request_url", "ftp://bots.example.com/i"), "/settings/interactivity/request_url"),
    (_drop_assistant_scope, "/features/assistant_view"),
    (_set("settings/event_subscriptions/request_url", ""), "/settings/event_subscriptions"),
])
async def test_create_refuses_a_bad_manifest_with_a_pointer(
    slack: FakeSlack, change: Callable[[dict[str, Any]], None], pointer: str
) -> None:
    token, _, _ = slack.issue_config_token()
    manifest = smith_manifest()
    change(manifest)
    apps_before = dict(slack.apps)
    refused = await api_error(client(slack, token).apps_manifest_create(manifest=manifest))
    assert refused["error"] == "invalid_manifest"
    assert [error["pointer"] for error in refused["errors"]] == [pointer]
    assert all(error["message"] for error in refused["errors"])
    assert slack.apps == apps_before and not slack.manifests
    assert (await api_error(client(slack, token).apps_manifest_validate(manifest=manifest)))["errors"] == \
        refused["errors"]


async def test_every_problem_is_reported_and_bad_json_is_refused(slack: FakeSlack) -> None:
    token, _, _ = slack.issue_config_token()
    manifest = smith_manifest("z" * 40)
    manifest["features"]["bot_user"]["display_name"] = ""
    manifest["settings"]["interactivity"]["request_url"] = "http://insecure.example/i"
    refused = await api_error(client(slack, token).apps_manifest_create(manifest=manifest))
    assert [error["pointer"] for error in refused["errors"]] == [
        "/display_information/name", "/features/bot_user/display_name", "/settings/interactivity/request_url"]
    not_json = await api_error(client(slack, token).apps_manifest_create(manifest="{not json"))
    assert not_json["error"] == "invalid_manifest" and not_json["errors"][0]["pointer"] == "/"


# -- update, validate, export, delete ------------------------------------------------------------------

async def test_update_validate_export_then_delete(slack: FakeSlack) -> None:
    token, _, _ = slack.issue_config_token()
    config = client(slack, token)
    (created, answer) = await create_and_install(slack, token)
    app_id, bot_token = created["app_id"], answer["access_token"]
    renamed = smith_manifest("Ada Lovelace")
    assert (await config.apps_manifest_update(app_id=app_id, manifest=renamed)).data == \
        {"ok": True, "app_id": app_id, "permissions_updated": False}
    more = copy.deepcopy(renamed)
    more["oauth_config"]["scopes"]["bot"].append("reactions:write")
    assert (await config.apps_manifest_update(app_id=app_id, manifest=json.dumps(more)))["permissions_updated"]
    exported = (await config.apps_manifest_export(app_id=app_id))["manifest"]
    assert exported == {"_metadata": {"major_version": 1, "minor_version": 1}, **more}
    # A bad update changes nothing; unknown apps and other workspaces' apps are invalid_app_id.
    broken = smith_manifest("")
    assert (await api_error(config.apps_manifest_update(app_id=app_id, manifest=broken)))["error"] == \
        "invalid_manifest"
    assert slack.manifests[app_id] == more
    slack.add_workspace("T0SECOND", "Second Co")
    stranger, _, _ = slack.issue_config_token("T0SECOND", "U0SECONDOWNER")
    for caller, wanted in [(config, "A0NOSUCHAPP"), (client(slack, stranger), app_id)]:
        assert (await api_error(caller.apps_manifest_update(app_id=wanted, manifest=renamed)))["error"] == \
            "invalid_app_id"
        assert (await api_error(caller.apps_manifest_export(app_id=wanted)))["error"] == "invalid_app_id"
        assert (await api_error(caller.apps_manifest_delete(app_id=wanted)))["error"] == "invalid_app_id"
    assert (await config.apps_manifest_validate(manifest=renamed, app_id=app_id)).data == {"ok": True, "errors": []}
    assert (await api_error(config.apps_manifest_validate(manifest=renamed, app_id="A0NOSUCHAPP")))["error"] == \
        "invalid_app_id"
    # Delete: the app, its credentials and its installs' tokens stop working; the default app is untouched.
    assert (await config.apps_manifest_delete(app_id=app_id)).data == {"ok": True}
    assert (await api_error(client(slack, bot_token).auth_test()))["error"] == "invalid_auth"
    assert (await api_error(config.apps_manifest_export(app_id=app_id)))["error"] == "invalid_app_id"
    gone = await consent(slack, created["oauth_authorize_url"])
    assert gone.status_code == 400
    assert app_id not in slack.manifests and (await client(slack, BOT_TOKEN).auth_test())["ok"] is True


# -- assistant pane ------------------------------------------------------------------------------------

async def test_assistant_calls_need_assistant_write_and_are_recorded(slack: FakeSlack) -> None:
    bot = client(slack, BOT_TOKEN)
    thread_ts = assistant_thread_started_event()["assistant_thread"]["thread_ts"]
    prompts = [{"title": "Summarise", "message": "Summarise #general today"},
               {"title": "Draft", "message": "Draft a reply to Sam"}]
    assert (await bot.assistant_threads_setSuggestedPrompts(channel_id=DM_CHANNEL_ID, thread_ts=thread_ts,
                                                            prompts=prompts, title="Try:")).data == {"ok": True}
    assert (await bot.assistant_threads_setStatus(channel_id=DM_CHANNEL_ID, thread_ts=thread_ts,
                                                  status="is thinking…"))["ok"] is True
    assert (await bot.assistant_threads_setStatus(channel_id=DM_CHANNEL_ID, thread_ts=thread_ts, status=""))["ok"]
    assert [call["method"] for call in slack.assistant_calls] == [
        "assistant.threads.setSuggestedPrompts", "assistant.threads.setStatus", "assistant.threads.setStatus"]
    first = slack.assistant_calls[0]
    assert (first["channel_id"], first["thread_ts"], first["prompts"], first["title"]) == \
        (DM_CHANNEL_ID, thread_ts, prompts, "Try:")
    assert [call.get("status") for call in slack.assistant_calls[1:]] == ["is thinking…", ""]
    too_many = [{"title": f"t{n}", "message": f"m{n}"} for n in range(5)]
    assert (await api_error(bot.assistant_threads_setSuggestedPrompts(
        channel_id=DM_CHANNEL_ID, thread_ts=thread_ts, prompts=too_many)))["error"] == "invalid_arguments"
    assert (await api_error(bot.assistant_threads_setStatus(channel_id="D0NOWHERE", thread_ts=thread_ts,
                                                            status="x")))["error"] == "channel_not_found"
    slack.add_token("xoxb-no-assistant", kind="bot", scopes=["chat:write", "im:history"], user_id="U0BOTUSER")
    plain = client(slack, "xoxb-no-assistant")
    for call in (plain.assistant_threads_setStatus(channel_id=DM_CHANNEL_ID, thread_ts=thread_ts, status="x"),
                 plain.assistant_threads_setSuggestedPrompts(channel_id=DM_CHANNEL_ID, prompts=prompts)):
        refused = await api_error(call)
        assert (refused["error"], refused["needed"]) == ("missing_scope", "assistant:write")
    assert len(slack.assistant_calls) == 3


def test_assistant_event_builders_make_slack_shapes() -> None:
    started = assistant_thread_started_event()
    thread = started["assistant_thread"]
    assert started["type"] == "assistant_thread_started" and re.fullmatch(r"\d{10}\.\d{6}", started["event_ts"])
    assert (thread["user_id"], thread["channel_id"]) == (INSTALLER_ID, DM_CHANNEL_ID)
    assert thread["context"] == {"channel_id": GENERAL_CHANNEL_ID, "team_id": TEAM_ID, "enterprise_id": None}
    nowhere = assistant_thread_started_event(context_channel=None, thread_ts="1767225600.000100")
    assert nowhere["assistant_thread"]["thread_ts"] == "1767225600.000100"
    assert "channel_id" not in nowhere["assistant_thread"]["context"]
    moved = assistant_thread_context_changed_event(thread["thread_ts"], context_channel="C0OTHER")
    assert moved["type"] == "assistant_thread_context_changed"
    assert moved["assistant_thread"]["thread_ts"] == thread["thread_ts"]
    assert moved["assistant_thread"]["context"]["channel_id"] == "C0OTHER"
    envelope = event_envelope(moved)
    assert envelope["type"] == "event_callback" and envelope["event"] is moved
