"""SL-7: the Slack tools a smith gets beside ``slack_send_message``, each only where the workspace's
installation granted the scopes it needs (search needs the installer's user token with search:read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from channels.errors import ChannelError
from channels.types import ToolSpec

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from channels.slack import Installation

HISTORY_SCOPES = frozenset({"channels:history", "groups:history", "im:history", "mpim:history"})
MAX_ITEMS = 50

SEARCH = ToolSpec("slack_search", "Search the workspace's messages, as the person who installed the app sees "
                  "them (Slack search syntax, e.g. 'budget in:#finance from:@dana').",
                  {"type": "object", "properties": {
                      "query": {"type": "string", "minLength": 1, "maxLength": 500},
                      "count": {"type": "integer", "minimum": 1, "maximum": 20}}, "required": ["query"]})
READ = ToolSpec("slack_read_messages", "Read recent messages of a Slack conversation (this one unless a channel "
                "id is given), or the replies of one thread.",
                {"type": "object", "properties": {
                    "channel": {"type": "string", "description": "A channel id such as C0123ABC; default: here."},
                    "thread_ts": {"type": "string", "description": "Read this thread's replies."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS}}})
LIST = ToolSpec("slack_list_channels", "List the workspace's channels the app can see (id, name, members).",
                {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 200}}})
NEEDS = {SEARCH.name: "search:read (a user scope)", READ.name: "channels:history or im:history",
         LIST.name: "channels:read"}


def allowed(installation: Installation | None) -> list[ToolSpec]:
    if installation is None:
        return []
    tools = []
    if installation.user_token and "search:read" in installation.user_scopes:
        tools.append(SEARCH)
    if installation.scopes & HISTORY_SCOPES:
        tools.append(READ)
    if "channels:read" in installation.scopes:
        tools.append(LIST)
    return tools


async def call(client: AsyncWebClient, installation: Installation | None, conversation: str, name: str,
               arguments: Mapping[str, Any]) -> str:
    if installation is None or name not in {tool.name for tool in allowed(installation)}:
        raise ChannelError(f"{name} is not available: the workspace did not grant {NEEDS.get(name, 'it')}",
                           code="missing_scope")
    try:
        if name == SEARCH.name:
            return await _search(client, installation, arguments)
        if name == READ.name:
            return await _read(client, installation, conversation, arguments)
        return await _list(client, installation, arguments)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        raise ChannelError(f"Slack answered {error}", code="missing_scope" if error == "missing_scope"
                           else "provider_error") from exc


def _int(arguments: Mapping[str, Any], key: str, default: int, top: int) -> int:
    try:
        return max(1, min(top, int(arguments.get(key) or default)))
    except (TypeError, ValueError):
        return default


async def _search(client: AsyncWebClient, installation: Installation, arguments: Mapping[str, Any]) -> str:
    query = str(arguments.get("query") or "").strip()
    if not query:
        raise ChannelError("query is required", code="invalid_arguments")
    answer = await client.search_messages(token=installation.user_token, query=query,
                                          count=_int(arguments, "count", 10, 20))
    matches = (answer.get("messages") or {}).get("matches") or []
    if not matches:
        return f"No messages match {query!r}."
    lines = [f"#{(m.get('channel') or {}).get('name', '?')} <@{m.get('user', '?')}>: {m.get('text', '')} "
             f"({m.get('permalink', '')})" for m in matches]
    return "\n".join(lines)


async def _read(client: AsyncWebClient, installation: Installation, conversation: str,
                arguments: Mapping[str, Any]) -> str:
    channel = str(arguments.get("channel") or conversation)
    limit = _int(arguments, "limit", 20, MAX_ITEMS)
    thread = arguments.get("thread_ts")
    if thread:
        answer = await client.conversations_replies(token=installation.bot_token, channel=channel, ts=str(thread),
                                                    limit=limit)
    else:
        answer = await client.conversations_history(token=installation.bot_token, channel=channel, limit=limit)
    messages = list(answer.get("messages") or [])
    if not messages:
        return "No messages."
    if not thread:
        messages.reverse()  # history comes newest first; the model reads oldest first
    return "\n".join(f"[{m.get('ts')}] <@{m.get('user') or m.get('bot_id') or '?'}>: {m.get('text', '')}"
                     for m in messages)


async def _list(client: AsyncWebClient, installation: Installation, arguments: Mapping[str, Any]) -> str:
    answer = await client.conversations_list(token=installation.bot_token, types="public_channel,private_channel",
                                             exclude_archived=True, limit=_int(arguments, "limit", 100, 200))
    channels = answer.get("channels") or []
    if not channels:
        return "No channels visible to the app."
    return "\n".join(f"{c.get('id')} #{c.get('name')} ({c.get('num_members', '?')} members)" for c in channels)
