"""Slack's app factory (SL-1): the app configuration token that mints per-smith apps from a manifest.

A configuration token (``xoxe.xoxp-…``) lives 12 hours; ``tooling.tokens.rotate`` trades its refresh token
(``xoxe-…``) for a new pair, and the old refresh token stops working, so the new one must be stored in the
same transaction as the token (reference/slack.md, "App Manifest API"). The channel rotates at connect
time (which also checks the refresh token) and whenever its token is due (``Channel.credentials_due``, the
leader's upkeep in app.services.polling).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.errors import SetupError

CONFIG_TOKEN_PATTERN = r"^xoxe\.xoxp-[A-Za-z0-9-]+$"
REFRESH_TOKEN_PATTERN = r"^xoxe-[A-Za-z0-9-]+$"
RENEW_BEFORE = timedelta(hours=2)  # of the 12 h a token lives: leaves room for a few failed attempts
REFUSED = frozenset({"invalid_refresh_token", "invalid_auth", "token_revoked", "token_expired", "not_authed",
                     "invalid_arguments"})
INVALID_CODE = "slack_factory_token_invalid"


@dataclass(frozen=True, slots=True)
class Rotated:
    token: str
    refresh_token: str
    team_id: str
    user_id: str
    expires_at: datetime

    def secrets(self) -> dict[str, str]:
        return {"config_token": self.token, "config_refresh_token": self.refresh_token}

    def details(self, now: datetime) -> dict[str, str]:
        return {"factory_team_id": self.team_id, "factory_user_id": self.user_id,
                "config_token_expires_at": self.expires_at.isoformat(), "config_rotated_at": now.isoformat()}


async def rotate(api_url: str, refresh_token: str) -> Rotated:
    """A new configuration token and refresh token; ``SetupError`` with ``slack_factory_token_invalid`` when
    Slack refuses the refresh token (expired, revoked, used already), ``provider_unreachable`` otherwise."""
    client = AsyncWebClient(base_url=f"{api_url.rstrip('/')}/")
    try:
        answer = await client.tooling_tokens_rotate(refresh_token=refresh_token)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        if error in REFUSED:
            raise SetupError(f"Slack refused the app configuration refresh token ({error}); generate a new "
                             "configuration token in api.slack.com/apps → Your App Configuration Tokens",
                             code=INVALID_CODE) from exc
        raise SetupError(f"Slack could not rotate the configuration token: {error}", code="provider_error") from exc
    except Exception as exc:  # aiohttp's and the OS's connection errors alike
        raise SetupError(f"Slack could not be reached to rotate the configuration token: {type(exc).__name__}",
                         code="provider_unreachable") from exc
    exp = answer.get("exp")
    expires_at = (datetime.fromtimestamp(int(exp), tz=UTC) if isinstance(exp, int | str) and str(exp).isdigit()
                  else datetime.now(UTC) + timedelta(hours=12))
    return Rotated(token=str(answer.get("token") or ""), refresh_token=str(answer.get("refresh_token") or ""),
                   team_id=str(answer.get("team_id") or ""), user_id=str(answer.get("user_id") or ""),
                   expires_at=expires_at)


def due(expires_at: str, now: datetime) -> bool:
    """Whether a token expiring at ``expires_at`` (ISO, as stored) should be rotated now."""
    try:
        return datetime.fromisoformat(expires_at) - now <= RENEW_BEFORE
    except ValueError:  # never rotated (or unreadable): rotate, which tells the expiry
        return True
