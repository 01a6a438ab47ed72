"""The App Manifest API and the assistant pane of FakeSlack (tests/fakes/slack.py mixes ``SlackAppsApi`` in).

- app configuration tokens (``xoxe.xoxp-…``, 12 h) and their refresh tokens (``xoxe-1-…``): the test controls
  ``issue_config_token``, ``expire_config_token``, ``revoke_refresh_token``, and ``tooling.tokens.rotate``;
- ``apps.manifest.create|update|delete|validate|export``, authenticated by a configuration token. A created app
  is registered like any other (``add_app``), so the usual OAuth install works with its credentials;
- ``assistant.threads.setSuggestedPrompts|setStatus`` for a bot token with ``assistant:write``.

Manifest checks are the subset of Slack's schema (reference/slack.md) that the product relies on; a failure
answers ``invalid_manifest`` with ``errors: [{message, pointer}]``, pointers being JSON pointers into the manifest.
"""

from __future__ import annotations

import itertools
import json
import secrets
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from tests.fakes.slack_socket import INSTALLER_ID, TEAM_ID
from tests.fakes.slack_web import ApiError, SlackApp, SlackChannel, SlackToken, Workspace, _Grant, _need

CONFIG_TOKEN_METHODS = frozenset({"apps.manifest.create", "apps.manifest.update", "apps.manifest.delete",
                                  "apps.manifest.validate", "apps.manifest.export"})
CONFIG_TOKEN_TTL_S = 12 * 3600  # Slack: "Each app configuration token will expire 12 hours after it has been generated"
MAX_SUGGESTED_PROMPTS = 4
# Scopes and events the fake accepts in a manifest: those the product asks for plus common neighbours. Slack's
# real lists are longer; a name missing here is refused like an unknown one would be.
KNOWN_BOT_SCOPES = frozenset({
    "app_mentions:read", "assistant:write", "bookmarks:read", "channels:history", "channels:join", "channels:read",
    "chat:write", "chat:write.customize", "chat:write.public", "commands", "emoji:read", "files:read", "files:write",
    "groups:history", "groups:read", "im:history", "im:read", "im:write", "links:read", "links:write",
    "mpim:history", "mpim:read", "mpim:write", "pins:read", "reactions:read", "reactions:write", "team:read",
    "usergroups:read", "users:read", "users:read.email", "users.profile:read",
})
# search:read is a user scope only (search.messages refuses bot tokens); assistant:write and
# app_mentions:read are bot scopes only.
KNOWN_USER_SCOPES = (KNOWN_BOT_SCOPES - {"app_mentions:read", "assistant:write", "commands"}) | {"search:read"}
KNOWN_BOT_EVENTS = frozenset({
    "app_home_opened", "app_mention", "app_uninstalled", "assistant_thread_context_changed",
    "assistant_thread_started", "message.channels", "message.groups", "message.im", "message.mpim",
    "tokens_revoked",
})
_ALNUM = string.ascii_uppercase + string.ascii_lowercase + string.digits


@dataclass
class ConfigToken:
    """An app configuration token: one person's, in one workspace, good for the Manifest API only."""
    token: str
    team_id: str
    user_id: str
    iat: int
    exp: int


class SlackAppsApi:
    """The Manifest API and assistant methods of FakeSlack (a mixin). State is set up by ``_init_apps_api``."""

    url: str
    apps: dict[str, SlackApp]
    workspaces: dict[str, Workspace]
    tokens: dict[str, SlackToken]
    _codes: dict[str, _Grant]
    _serial: itertools.count[int]

    if TYPE_CHECKING:  # defined by FakeSlack and SlackWebApi
        @property
        def authorize_url(self) -> str: ...

        def add_app(self, app_id: str, client_id: str, client_secret: str, signing_secret: str,
                    name: str = ...) -> SlackApp: ...

        def _conversation(self, tok: SlackToken, channel_id: Any) -> SlackChannel: ...

    def _init_apps_api(self) -> None:
        self.config_tokens: dict[str, ConfigToken] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # live refresh token -> (team id, user id)
        self.manifests: dict[str, dict[str, Any]] = {}  # app id -> the manifest as last created/updated
        self.manifest_teams: dict[str, str] = {}  # app id -> the workspace whose config token made it
        self.assistant_calls: list[dict[str, Any]] = []  # assistant.threads.* calls that succeeded
        # A rule of Slack's the fake does not model (a reserved name...): the next create or update answers
        # invalid_manifest with these errors.
        self.refuse_next_manifest: list[dict[str, str]] | None = None

    # -- test controls ---------------------------------------------------------------------------

    def issue_config_token(self, team_id: str = TEAM_ID, user_id: str = INSTALLER_ID) -> tuple[str, str, int]:
        """What a person copies from "Your App Configuration Tokens": (token, refresh token, exp unix time)."""
        token = self._new_config_token(team_id, user_id)
        refresh = f"xoxe-1-{secrets.token_hex(48)}"
        self.refresh_tokens[refresh] = (team_id, user_id)
        return token.token, refresh, token.exp

    def expire_config_token(self, token: str) -> None:
        """Make ``token`` past its ``exp`` now (calls answer ``token_expired``); its refresh token still works."""
        self.config_tokens[token].exp = int(time.time()) - 1

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """Make ``refresh_token`` unknown, as if revoked in the app settings (rotate answers invalid_refresh_token)."""
        self.refresh_tokens.pop(refresh_token, None)

    def _new_config_token(self, team_id: str, user_id: str) -> ConfigToken:
        now = int(time.time())
        token = ConfigToken(f"xoxe.xoxp-1-{secrets.token_hex(48)}", team_id, user_id, now, now + CONFIG_TOKEN_TTL_S)
        self.config_tokens[token.token] = token
        return token

    def _authenticate_config(self, params: dict[str, Any]) -> ConfigToken:
        presented = str(params.get("token") or "")
        if not presented:
            raise ApiError("not_authed")
        if presented in self.tokens:  # a bot, user or app-level token
            raise ApiError("not_allowed_token_type")
        token = self.config_tokens.get(presented)
        if token is None:
            raise ApiError("invalid_auth")
        if time.time() >= token.exp:
            raise ApiError("token_expired")
        return token

    # -- tooling.tokens.rotate (no token: the refresh token is the credential) ---------------------

    async def _m_tooling_tokens_rotate(self, _: None, params: dict[str, Any]) -> dict[str, Any]:
        # Single use: the refresh token is spent and a new one comes back. The access token issued before keeps
        # working until its own exp: Slack documents nothing about revoking it, and that is its behaviour as far
        # as we know.
        owner = self.refresh_tokens.pop(str(params.get("refresh_token") or ""), None)
        if owner is None:
            raise ApiError("invalid_refresh_token")
        token = self._new_config_token(*owner)
        refresh = f"xoxe-1-{secrets.token_hex(48)}"
        self.refresh_tokens[refresh] = owner
        return {"token": token.token, "refresh_token": refresh, "team_id": token.team_id,
                "user_id": token.user_id, "iat": token.iat, "exp": token.exp}

    # -- apps.manifest.* -------------------------------------------------------------------------

    def _checked(self, params: dict[str, Any]) -> dict[str, Any]:
        manifest = _valid_manifest(params)
        refusal, self.refuse_next_manifest = self.refuse_next_manifest, None
        if refusal:
            raise ApiError("invalid_manifest", errors=refusal)
        return manifest

    async def _m_apps_manifest_create(self, tok: ConfigToken, params: dict[str, Any]) -> dict[str, Any]:
        manifest = self._checked(params)
        app_id = self._new_app_id()
        client_id = f"{secrets.randbelow(9 * 10**9) + 10**9}.{secrets.randbelow(9 * 10**12) + 10**12}"
        app = self.add_app(app_id, client_id, secrets.token_hex(16), secrets.token_hex(16),
                           name=manifest["display_information"]["name"])
        app.redirect_urls = list(_at(manifest, "oauth_config", "redirect_urls") or [])
        self.manifests[app_id], self.manifest_teams[app_id] = manifest, tok.team_id
        verification_token = "".join(secrets.choice(_ALNUM) for _ in range(24))
        bot_scopes, user_scopes = _scopes(manifest)
        query = {"client_id": client_id, "scope": ",".join(bot_scopes)}
        if user_scopes:
            query["user_scope"] = ",".join(user_scopes)
        return {"app_id": app_id,
                "credentials": {"client_id": client_id, "client_secret": app.client_secret,
                                "verification_token": verification_token, "signing_secret": app.signing_secret},
                "oauth_authorize_url": f"{self.authorize_url}?{urlencode(query, safe=':,')}",
                "team_id": tok.team_id, "team_domain": self.workspaces[tok.team_id].domain}

    async def _m_apps_manifest_update(self, tok: ConfigToken, params: dict[str, Any]) -> dict[str, Any]:
        app = self._manifest_app(tok, params.get("app_id"))
        manifest = self._checked(params)
        permissions_updated = _scopes(manifest) != _scopes(self.manifests[app.app_id])
        self.manifests[app.app_id] = manifest  # a full replacement, as Slack's docs say
        app.name = manifest["display_information"]["name"]
        app.redirect_urls = list(_at(manifest, "oauth_config", "redirect_urls") or [])
        return {"app_id": app.app_id, "permissions_updated": permissions_updated}

    async def _m_apps_manifest_delete(self, tok: ConfigToken, params: dict[str, Any]) -> dict[str, Any]:
        app = self._manifest_app(tok, params.get("app_id"))
        del self.apps[app.client_id], self.manifests[app.app_id], self.manifest_teams[app.app_id]
        for token in [t for t, held in self.tokens.items() if held.app_id == app.app_id]:
            del self.tokens[token]  # every install's bot and user tokens die with the app
        return {}

    async def _m_apps_manifest_validate(self, tok: ConfigToken, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("app_id"):
            self._manifest_app(tok, params["app_id"])
        _valid_manifest(params)
        return {"errors": []}

    async def _m_apps_manifest_export(self, tok: ConfigToken, params: dict[str, Any]) -> dict[str, Any]:
        app = self._manifest_app(tok, params.get("app_id"))
        return {"manifest": {"_metadata": {"major_version": 1, "minor_version": 1}, **self.manifests[app.app_id]}}

    def _manifest_app(self, tok: ConfigToken, app_id: Any) -> SlackApp:
        """An app the token's workspace made through the Manifest API (Slack answers ``invalid_app_id`` else)."""
        if not app_id:
            raise ApiError("invalid_arguments")
        if self.manifest_teams.get(str(app_id)) != tok.team_id:
            raise ApiError("invalid_app_id")
        return next(app for app in self.apps.values() if app.app_id == app_id)

    def _new_app_id(self) -> str:
        while True:
            app_id = "A0" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
            if all(app.app_id != app_id for app in self.apps.values()):
                return app_id

    # -- assistant.threads.* ---------------------------------------------------------------------

    async def _m_assistant_threads_setSuggestedPrompts(self, tok: SlackToken,
                                                       params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "assistant:write")
        channel = self._conversation(tok, params.get("channel_id"))
        prompts = _json_param(params.get("prompts"))
        if (not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_SUGGESTED_PROMPTS
                or not all(isinstance(p, dict) and isinstance(p.get("title"), str) and p["title"]
                           and isinstance(p.get("message"), str) and p["message"] for p in prompts)):
            raise ApiError("invalid_arguments")
        self.assistant_calls.append({"method": "assistant.threads.setSuggestedPrompts", "team_id": tok.team_id,
                                     "app_id": tok.app_id, "channel_id": channel.id,
                                     "thread_ts": params.get("thread_ts"), "prompts": prompts,
                                     "title": params.get("title"), "received_at": time.monotonic()})
        return {}

    async def _m_assistant_threads_setStatus(self, tok: SlackToken, params: dict[str, Any]) -> dict[str, Any]:
        _need(tok, "assistant:write")
        channel = self._conversation(tok, params.get("channel_id"))
        if not params.get("thread_ts") or not isinstance(params.get("status"), str):
            raise ApiError("invalid_arguments")
        self.assistant_calls.append({"method": "assistant.threads.setStatus", "team_id": tok.team_id,
                                     "app_id": tok.app_id, "channel_id": channel.id,
                                     "thread_ts": params["thread_ts"], "status": params["status"],  # "" clears
                                     "loading_messages": _json_param(params.get("loading_messages")),
                                     "received_at": time.monotonic()})
        return {}


# -- manifest validation ---------------------------------------------------------------------------

def _valid_manifest(params: dict[str, Any]) -> dict[str, Any]:
    """The call's ``manifest`` (a JSON string, as slack_sdk sends it; an object in a JSON body), checked."""
    raw = params.get("manifest")
    if raw is None or raw == "":
        raise ApiError("invalid_arguments")
    try:
        manifest = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ApiError("invalid_manifest", errors=[{"message": "Manifest is not valid JSON", "pointer": "/"}]) \
            from None
    errors = manifest_errors(manifest)
    if errors:
        raise ApiError("invalid_manifest", errors=errors)
    return manifest


def manifest_errors(manifest: Any) -> list[dict[str, str]]:
    """What the fake finds wrong with ``manifest``: ``[{message, pointer}]``, empty when it is acceptable."""
    if not isinstance(manifest, dict):
        return [{"message": "Manifest must be an object", "pointer": "/"}]
    errors: list[dict[str, str]] = []

    def fail(pointer: str, message: str) -> None:
        errors.append({"message": message, "pointer": pointer})

    name = _at(manifest, "display_information", "name")
    if not isinstance(name, str) or not 1 <= len(name) <= 35:
        fail("/display_information/name", "Must be a string of 1 to 35 characters")
    bot_user = _at(manifest, "features", "bot_user")
    if bot_user is not None:
        display_name = bot_user.get("display_name") if isinstance(bot_user, dict) else None
        if not isinstance(display_name, str) or not 1 <= len(display_name) <= 80:
            fail("/features/bot_user/display_name", "Must be a string of 1 to 80 characters")
    for kind, known in (("bot", KNOWN_BOT_SCOPES), ("user", KNOWN_USER_SCOPES)):
        _check_names(_at(manifest, "oauth_config", "scopes", kind), known, f"/oauth_config/scopes/{kind}",
                     f"Invalid {kind} scope", fail)
    _check_names(_at(manifest, "settings", "event_subscriptions", "bot_events"), KNOWN_BOT_EVENTS,
                 "/settings/event_subscriptions/bot_events", "Invalid bot event", fail)
    redirect_urls = _at(manifest, "oauth_config", "redirect_urls")
    if redirect_urls is not None:
        if not isinstance(redirect_urls, list):
            fail("/oauth_config/redirect_urls", "Must be an array of URLs")
        else:
            for index, url in enumerate(redirect_urls):
                if not _https(url):
                    fail(f"/oauth_config/redirect_urls/{index}", "Must be a valid https URL")
    socket_mode = _at(manifest, "settings", "socket_mode_enabled") is True
    events = _at(manifest, "settings", "event_subscriptions")
    if isinstance(events, dict):
        if events.get("request_url") and not _https(events["request_url"]):
            fail("/settings/event_subscriptions/request_url", "Must be a valid https URL")
        elif not events.get("request_url") and not socket_mode:  # message as Slack's docs show it
            fail("/settings/event_subscriptions", "Event Subscription requires either Request URL or Socket Mode "
                                                  "Enabled")
    interactivity = _at(manifest, "settings", "interactivity")
    if isinstance(interactivity, dict):
        if interactivity.get("request_url") and not _https(interactivity["request_url"]):
            fail("/settings/interactivity/request_url", "Must be a valid https URL")
        elif interactivity.get("is_enabled") and not interactivity.get("request_url") and not socket_mode:
            fail("/settings/interactivity", "Interactivity requires a Request URL")
    if _at(manifest, "features", "assistant_view") is not None:
        bot_scopes = _at(manifest, "oauth_config", "scopes", "bot")
        if not isinstance(bot_scopes, list) or "assistant:write" not in bot_scopes:
            fail("/features/assistant_view", "The assistant:write bot scope is required for assistant_view")
    return errors


def _check_names(names: Any, known: frozenset[str], pointer: str, message: str, fail: Any) -> None:
    if names is None:
        return
    if not isinstance(names, list):
        fail(pointer, "Must be an array of strings")
        return
    for index, name in enumerate(names):
        if name not in known:
            fail(f"{pointer}/{index}", f"{message}: {name}")


def _at(tree: Any, *path: str) -> Any:
    """``tree[path[0]][path[1]]…``, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _https(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _scopes(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    return (list(_at(manifest, "oauth_config", "scopes", "bot") or []),
            list(_at(manifest, "oauth_config", "scopes", "user") or []))


def _json_param(value: Any) -> Any:
    """A list or object parameter: as is from a JSON body, decoded when a form body carried it as a string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError("invalid_arguments") from None
    return value


def redirect_allowed(redirect_uri: str, configured: list[str]) -> bool:
    """Slack accepts a ``redirect_uri`` equal to a configured Redirect URL or below it (same scheme and host)."""
    asked = urlsplit(redirect_uri)
    for url in configured:
        allowed = urlsplit(url)
        base = allowed.path.rstrip("/")
        if (asked.scheme, asked.netloc) == (allowed.scheme, allowed.netloc) and (
                asked.path == allowed.path or asked.path.rstrip("/") == base or asked.path.startswith(base + "/")):
            return True
    return False
