"""Dedicated Slack apps (SL-3, SL-6): each smith its own app, minted from a fixed manifest with the app
configuration token (channels/slack_factory.py), and the assistant pane of such an app.

Each app posts to its own request URL (``…/v1/slack/webhook/{tenant}?app=<our row id>``), verified with
that app's signing secret only; the shared app's URL (no ``app``) takes only the shared app's. Its
workspaces are installations keyed ``"<app id>:<team id>"`` and its conversations are addressed
``"<app id>:<team id>:<channel id>"``, so a send finds the app's bot token from the address alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from channels.apps import AppFactory, AppRefused, AppSpec, MintedApp
from channels.errors import SetupError
from channels.payloads import publicly_reachable
from channels.slack_factory import INVALID_CODE, REFUSED
from channels.slack_manifest import dedicated_manifest
from channels.types import Inbound, InboundMessage, ProviderEvent, RawRequest

if TYPE_CHECKING:
    from channels.slack import SlackChannel

log = logging.getLogger("channels.slack")

APP_QUERY = "app"  # the request URL's parameter naming a dedicated app (our row id)
MAX_NAME = 35  # display_information.name (reference/slack.md)
MAX_PROMPTS = 4  # assistant.threads.setSuggestedPrompts
MAX_PROMPT_TITLE = 75
MAX_PROMPT_MESSAGE = 500
MAX_GREETING = 250
THINKING = "is thinking…"
GONE = frozenset({"invalid_app_id", "app_not_found"})
MAX_STATUS_TASKS = 256


@dataclass(frozen=True, slots=True)
class DedicatedApp:
    key: str  # our row id: the ``app`` of its request URL
    app_id: str
    client_id: str
    client_secret: str
    verifier: SignatureVerifier
    assistant: bool = False
    greeting: str = ""
    prompts: tuple[Mapping[str, str], ...] = field(default_factory=tuple)


def app_urls(public_url: str, tenant: str, key: str) -> dict[str, str]:
    webhook = f"{public_url}/v1/slack/webhook/{tenant}?{APP_QUERY}={key}"
    return {"events_url": webhook, "interactivity_url": webhook,
            "oauth_redirect_url": f"{public_url}/v1/slack/oauth/callback"}


def _prompt(value: Any, index: int) -> dict[str, str]:
    if isinstance(value, str):
        text = value.strip()
        title, message = text, text
    elif isinstance(value, dict):
        title, message = str(value.get("title") or "").strip(), str(value.get("message") or "").strip()
    else:
        raise ValueError(f"provider_metadata.suggested_prompts.{index}: a prompt is a text or {{title, message}}")
    if not title or not message:
        raise ValueError(f"provider_metadata.suggested_prompts.{index}: a prompt cannot be empty")
    if len(title) > MAX_PROMPT_TITLE or len(message) > MAX_PROMPT_MESSAGE:
        raise ValueError(f"provider_metadata.suggested_prompts.{index}: at most {MAX_PROMPT_TITLE} characters "
                         f"for its title and {MAX_PROMPT_MESSAGE} for its message")
    return {"title": title, "message": message}


class SlackAppFactory(AppFactory):
    """The app factory half of ``SlackChannel`` (kept apart so each module reads in one sitting)."""

    app_noun: ClassVar[str] = "Slack app"
    app_cap_code: ClassVar[str] = "slack_app_cap_reached"
    app_cap_setting: ClassVar[str] = "slack_app_cap"
    max_display_name: ClassVar[int] = MAX_NAME

    apps: dict[str, DedicatedApp]
    apps_by_id: dict[str, DedicatedApp]
    _status_tasks: dict[tuple[str, str], asyncio.Task[None]]

    @classmethod
    def app_request(cls, setup: Mapping[str, Any], metadata: Mapping[str, Any], *,
                    smith_name: str) -> tuple[str, dict[str, Any]]:
        """SL-3: ``setup.display_name`` (Slack's 1–35 characters) and the assistant pane's settings."""
        value = setup.get("display_name")
        name = value.strip() if isinstance(value, str) else ""
        if not 1 <= len(name) <= MAX_NAME:
            raise ValueError(f"setup.display_name: a Slack app's name is 1 to {MAX_NAME} characters")
        return name, cls.app_settings(metadata)

    @classmethod
    def app_settings(cls, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """SL-6: ``{assistant, greeting, suggested_prompts}`` (at most 4); anything else is not ours to read,
        so no metadata can reach the manifest's URLs."""
        if not metadata.get("assistant"):
            return {"assistant": False}
        greeting = metadata.get("greeting") or ""
        if not isinstance(greeting, str) or len(greeting) > MAX_GREETING:
            raise ValueError(f"provider_metadata.greeting: a text of at most {MAX_GREETING} characters")
        prompts = metadata.get("suggested_prompts") or []
        if not isinstance(prompts, list) or len(prompts) > MAX_PROMPTS:
            raise ValueError(f"provider_metadata.suggested_prompts: at most {MAX_PROMPTS} prompts")
        return {"assistant": True, "greeting": greeting.strip(),
                "suggested_prompts": [_prompt(value, index) for index, value in enumerate(prompts)]}

    def factory_ready(self: SlackChannel) -> str | None:
        if not self.secrets.config_token:
            return ("Slack's app factory is not set up: add an app configuration refresh token in "
                    "Settings → Integrations → Slack")
        return None

    def _manifest(self, spec: AppSpec, public_url: str, tenant: str) -> dict[str, Any]:
        urls = app_urls(public_url, tenant, spec.key)
        if not publicly_reachable(urls["events_url"]):
            raise SetupError(f"Slack cannot reach {public_url}: a dedicated app needs this server at a public "
                             "https address (IC_PUBLIC_URL)", code="public_url_required")
        assistant = spec.settings if spec.settings.get("assistant") else None
        return dedicated_manifest(urls, display_name=spec.display_name, owner_name=spec.owner_name,
                                  assistant=assistant)

    async def _manifest_call(self: SlackChannel, method: str, **arguments: Any) -> dict[str, Any]:
        client = AsyncWebClient(base_url=f"{self.api_url.rstrip('/')}/", timeout=20)
        try:
            answer = await getattr(client, method)(token=self.secrets.config_token, **arguments)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            if error in REFUSED:
                raise AppRefused(f"Slack refused the app configuration token ({error}); generate a new one in "
                                 "api.slack.com/apps → Your App Configuration Tokens and paste its refresh token in "
                                 "Settings → Integrations → Slack", code=INVALID_CODE, credentials=True) from exc
            if error == "invalid_manifest":
                errors = [e for e in exc.response.get("errors") or [] if isinstance(e, dict)]
                said = "; ".join(f"{e.get('pointer', '')}: {e.get('message', '')}" for e in errors)
                raise AppRefused(f"Slack refused the app's manifest: {said or error}", code="invalid_manifest",
                                 field=manifest_field(errors), details={"errors": errors}) from exc
            if error in GONE:
                raise SetupError(f"Slack does not know this app any more ({error})", code="app_gone") from exc
            if error == "ratelimited" or exc.response.status_code == 429:
                raise SetupError("Slack is rate limiting app changes; try again in a minute",
                                 code="provider_rate_limited") from exc
            raise SetupError(f"Slack refused the app change: {error}", code="provider_error") from exc
        except Exception as exc:
            raise SetupError(f"Slack could not be reached: {type(exc).__name__}", code="provider_unreachable") from exc
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    async def mint_app(self: SlackChannel, spec: AppSpec, *, public_url: str, tenant: str) -> MintedApp:
        made = await self._manifest_call("apps_manifest_create", manifest=self._manifest(spec, public_url, tenant))
        credentials = made.get("credentials") or {}
        app_id, client_id = str(made.get("app_id") or ""), str(credentials.get("client_id") or "")
        if not (app_id and client_id and credentials.get("client_secret") and credentials.get("signing_secret")):
            raise SetupError("Slack's answer lacked the app's id or credentials", code="provider_error")
        return MintedApp(external_id=app_id,
                         public={"app_id": app_id, "client_id": client_id, "team_id": made.get("team_id"),
                                 "team_domain": made.get("team_domain"), **spec.settings},
                         secrets={"client_secret": str(credentials["client_secret"]),
                                  "signing_secret": str(credentials["signing_secret"])})

    async def update_app(self: SlackChannel, external_id: str, spec: AppSpec, *, public_url: str,
                         tenant: str) -> None:
        await self._manifest_call("apps_manifest_update", app_id=external_id,
                                  manifest=self._manifest(spec, public_url, tenant))

    async def delete_app(self: SlackChannel, external_id: str) -> None:
        try:
            await self._manifest_call("apps_manifest_delete", app_id=external_id)
        except SetupError as exc:
            if exc.code != "app_gone":  # deleted at Slack already: what was asked for
                raise

    def attach_apps(self, apps: Mapping[str, Mapping[str, Any]]) -> None:
        self.apps = {}
        for key, row in apps.items():
            if not (row.get("app_id") and row.get("signing_secret")):
                continue
            self.apps[key] = DedicatedApp(
                key=key, app_id=str(row["app_id"]), client_id=str(row.get("client_id") or ""),
                client_secret=str(row.get("client_secret") or ""),
                verifier=SignatureVerifier(str(row["signing_secret"]), clock=self._verifier.clock),  # type: ignore[attr-defined]
                assistant=bool(row.get("assistant")), greeting=str(row.get("greeting") or ""),
                prompts=tuple(row.get("suggested_prompts") or ()))
        self.apps_by_id = {app.app_id: app for app in self.apps.values()}

    def app_of_request(self, raw: RawRequest) -> tuple[bool, DedicatedApp | None]:
        """(known, the app): the shared app's URL names none; an unknown ``app`` is not known."""
        key = raw.query.get(APP_QUERY)
        if key is None:
            return True, None
        found = self.apps.get(key)
        return found is not None, found

    def app_client(self, app_id: str) -> tuple[str, str] | None:
        """A dedicated app's OAuth client (id, secret), for its install."""
        found = self.apps_by_id.get(app_id)
        return (found.client_id, found.client_secret) if found else None

    # -- the assistant pane (SL-6) -------------------------------------------------------------------

    def _assistant_app(self, installation_key: str) -> DedicatedApp | None:
        app_id, _, team = installation_key.rpartition(":")
        found = self.apps_by_id.get(app_id) if team and app_id else None
        return found if found is not None and found.assistant else None

    def assistant_learn(self: SlackChannel, items: Sequence[Inbound]) -> None:
        """A new assistant thread gets its greeting and prompts; a message in one shows "is thinking…" until
        the reply is sent. In the background: the webhook's answer never waits on Slack."""
        for item in items:
            if isinstance(item, ProviderEvent) and item.type == "assistant_thread_started":
                app = self._assistant_app(item.installation)
                if app is not None:
                    self._in_background(None, self._greet(app, item.installation, item.data))
            elif isinstance(item, InboundMessage) and item.is_direct and item.thread:
                key, _, conversation = item.address.rpartition(":")
                if self._assistant_app(key) is not None:
                    self._in_background((item.address, item.thread),
                                        self._set_status(key, conversation, item.thread, THINKING))

    def _in_background(self, thread: tuple[str, str] | None, work: Any) -> None:
        if len(self._status_tasks) >= MAX_STATUS_TASKS:
            work.close()
            return
        task = asyncio.create_task(work)
        slot = thread or (f"greet:{id(task)}", "")
        self._status_tasks[slot] = task
        task.add_done_callback(lambda _: self._status_tasks.pop(slot, None) if self._status_tasks.get(slot) is task
                               else None)

    async def _greet(self: SlackChannel, app: DedicatedApp, key: str, data: Mapping[str, Any]) -> None:
        token, channel, thread = self.token_for(key), data.get("channel_id"), data.get("thread_ts")
        if token is None or not isinstance(channel, str) or not isinstance(thread, str):
            return
        try:
            if app.prompts:
                await self.client.assistant_threads_setSuggestedPrompts(
                    token=token, channel_id=channel, thread_ts=thread, prompts=[dict(p) for p in app.prompts],
                    title=app.greeting or None)
            elif app.greeting:
                await self.client.chat_postMessage(token=token, channel=channel, thread_ts=thread, text=app.greeting)
        except Exception as exc:  # a courtesy: the thread works without it
            log.info("slack: greeting an assistant thread failed: %s", _reason(exc))

    async def _set_status(self: SlackChannel, key: str, conversation: str, thread: str, status: str) -> None:
        token = self.token_for(key)
        if token is None:
            return
        try:
            await self.client.assistant_threads_setStatus(token=token, channel_id=conversation, thread_ts=thread,
                                                          status=status)
        except Exception as exc:
            log.info("slack: setting an assistant thread's status failed: %s", _reason(exc))

    async def after_send(self, address: str, payload: Mapping[str, Any]) -> None:
        """A reply in an assistant thread clears "is thinking…" (after the status set for it, if that is
        still on its way in this process)."""
        thread = payload.get("thread_ts")
        key, _, conversation = address.rpartition(":")
        if not isinstance(thread, str) or not conversation.startswith("D") or self._assistant_app(key) is None:
            return
        pending = self._status_tasks.get((address, thread))
        if pending is not None:
            await asyncio.wait([pending], timeout=5)
        await self._set_status(key, conversation, thread, "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "error")
    return type(exc).__name__


def manifest_field(errors: Sequence[Mapping[str, str]]) -> str | None:
    """The request field a manifest error is about, where it is one the person typed."""
    for error in errors:
        if str(error.get("pointer", "")).startswith(("/display_information/name", "/features/bot_user")):
            return "setup.display_name"
        if str(error.get("pointer", "")).startswith("/features/assistant_view"):
            return "provider_metadata"
    return None
