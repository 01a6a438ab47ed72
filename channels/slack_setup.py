"""Connecting Slack (SlackChannel's onboarding): checking the credentials a person pasted, the OAuth code
exchange and the installer's DM, and the app factory's configuration token (channels/slack_factory.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.errors import SetupError
from channels.payloads import publicly_reachable
from channels.slack_factory import due, rotate
from channels.types import Renewed, SetupInfo

if TYPE_CHECKING:
    from channels.slack import SlackChannel

# Errors that mean the workspace's token no longer works (uninstalled, revoked): never retried.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                         "no_permission", "missing_scope", "not_allowed_token_type"})


class SlackOnboarding:
    """The onboarding half of ``SlackChannel`` (kept apart so each module reads in one sitting)."""

    async def auth_test(self: SlackChannel, token: str) -> dict[str, Any]:
        try:
            answer = await self.client.auth_test(token=token)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "error"))
            raise SetupError(f"Slack refused the token: {error}",
                             code="invalid_token" if error in AUTH_ERRORS else "setup_failed") from exc
        except Exception as exc:
            raise SetupError(f"Slack could not be reached: {type(exc).__name__}",
                             code="provider_unreachable") from exc
        found = dict(answer.data) if isinstance(answer.data, dict) else {}
        headers = {str(k).lower(): v for k, v in (answer.headers or {}).items()}
        granted = headers.get("x-oauth-scopes") or ""  # Slack names the token's scopes in this header
        found["scopes"] = sorted({s.strip() for s in str(granted).split(",") if s.strip()})
        return found

    async def _check_app_token(self) -> None:
        try:
            await open_socket_url(self.api_url, self.secrets.app_token)
        except SlackApiError as exc:
            raise SetupError(f"Slack refused the app-level token: {exc.response.get('error', 'error')}",
                             code="invalid_app_token") from exc
        except Exception as exc:
            raise SetupError(f"Slack could not be reached: {type(exc).__name__}", code="provider_unreachable") from exc

    async def exchange_code(self: SlackChannel, code: str, redirect_uri: str,
                            client: tuple[str, str] | None = None) -> dict[str, Any]:
        """SL-2: the OAuth code for the workspace's tokens (oauth.v2.access, HTTP Basic client auth), with the
        shared app's client or (``client``: id, secret) a dedicated app's."""
        client_id, client_secret = client or (self.config.client_id, self.secrets.client_secret)
        try:
            answer = await self.client.oauth_v2_access(client_id=client_id, client_secret=client_secret,
                                                       code=code, redirect_uri=redirect_uri)
        except SlackApiError as exc:
            raise SetupError(f"Slack refused the install: {exc.response.get('error', 'error')}",
                             code="oauth_failed") from exc
        except Exception as exc:
            raise SetupError(f"Slack could not be reached: {type(exc).__name__}", code="provider_unreachable") from exc
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    async def open_dm(self: SlackChannel, token: str, user_id: str) -> str:
        """The app's DM with a person (conversations.open), where their deployment talks to them."""
        try:
            answer = await self.client.conversations_open(token=token, users=user_id)
        except SlackApiError as exc:
            raise SetupError(f"Slack refused to open the DM: {exc.response.get('error', 'error')}",
                             code="oauth_failed") from exc
        except Exception as exc:
            raise SetupError(f"Slack could not be reached: {type(exc).__name__}", code="provider_unreachable") from exc
        return str((answer.get("channel") or {}).get("id") or "")

    async def setup(self: SlackChannel, *, webhook_url: str) -> SetupInfo:
        details: dict[str, Any] = {}
        mode: Literal["webhook", "socket_mode"] = "webhook"
        if self.secrets.app_token:
            await self._check_app_token()
            if not publicly_reachable(webhook_url):
                mode = "socket_mode"
        installation = None
        if self.secrets.bot_token:  # one workspace's token pasted by hand: that workspace is installed
            found = await self.auth_test(self.secrets.bot_token)
            details = {"team_id": found.get("team_id"), "team": found.get("team"),
                       "bot_user_id": found.get("user_id"), "bot_id": found.get("bot_id")}
            installation = {"external_id": str(found.get("team_id") or ""), "name": str(found.get("team") or ""),
                            "public": {"bot_user_id": found.get("user_id"), "bot_id": found.get("bot_id"),
                                       "scopes": found.get("scopes", []), "installer": None},
                            "secrets": {"bot_token": self.secrets.bot_token}}
        renewed: dict[str, str] = {}
        if self.secrets.config_refresh_token:  # the app factory: rotating checks it and tells the expiry
            rotated = await rotate(self.api_url, self.secrets.config_refresh_token)
            details.update(rotated.details(datetime.now(UTC)))
            renewed = rotated.secrets()
        if mode == "socket_mode":
            return SetupInfo(mode=mode, details=details, installation=installation, secrets=renewed, steps=[
                f"Slack cannot reach {webhook_url}, so events arrive over Socket Mode (the app-level token).",
                "In the app's settings turn on Socket Mode (Settings → Socket Mode).",
                "Then add it to a workspace from a smith's Deployments tab (Add to Slack)."])
        return SetupInfo(mode=mode, webhook_url=webhook_url, details=details, installation=installation,
                         secrets=renewed, steps=[
                             "Create the Slack app from the manifest below (api.slack.com/apps → Create New App → "
                             "From a manifest).",
                             "Copy its Client ID, Client Secret and Signing Secret here.",
                             "Then add it to a workspace from a smith's Deployments tab (Add to Slack)."])


    def credentials_due(self: SlackChannel, now: datetime) -> bool:
        return bool(self.secrets.config_refresh_token) and due(self.config.config_token_expires_at, now)

    async def renew_credentials(self: SlackChannel, now: datetime) -> Renewed:
        rotated = await rotate(self.api_url, self.secrets.config_refresh_token)
        return Renewed(secrets=rotated.secrets(), details=rotated.details(now))


async def open_socket_url(api_url: str, app_token: str) -> str:
    answer = await AsyncWebClient(base_url=f"{api_url}/").apps_connections_open(app_token=app_token)
    return str(answer.get("url") or "")
