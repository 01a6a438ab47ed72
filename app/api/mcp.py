"""MCP server endpoints: ``POST /v1/deployments/{deployment_id}/mcp`` (Streamable HTTP, JSON-RPC 2.0).

Built on the official SDK's low-level ``Server`` and its ``StreamableHTTPSessionManager`` in stateless
JSON mode, so any worker process answers any request (no session lives in one process's memory).
The low-level server rather than ``MCPServer`` because every list here is per caller: the memory
resources belong to the smith this token reaches on this deployment, and the handlers need the
request to know which; ``MCPServer``'s resource registry is static.

Every HTTP request passes these checks before the SDK sees it (errors in the project's envelope):
1. Host and Origin, as the MCP transport spec asks against DNS rebinding: the Host must be the one
   of IC_PUBLIC_URL (or a localhost form, for local use) -> else 421; an Origin, when sent, must be
   that URL's origin (or a localhost origin) -> else 403.
2. POST only: stateless JSON mode offers no GET stream and has no session to DELETE -> 405
   (the transport spec's answer for a server without a GET stream).
3. ``Authorization: Bearer <token>`` of this project -> else 401 with ``WWW-Authenticate: Bearer``;
   the deployment must be a live MCP deployment of the token's project -> else 404; a smith token
   reaches only its own smith's endpoint, an MCP caller token (``ic_mcp_…``) only the deployment it
   was minted on -> else 403.
Then the SDK handles the JSON-RPC message; its own transport errors (body too large, wrong
Content-Type) are rewritten to JSON-RPC error bodies so no MCP client ever sees plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    CallToolRequestParams,
    CallToolResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
)
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import error_response
from app.services import mcp as service
from app.services import tokens
from app.services.actors import Actor
from app.services.errors import DomainError, Forbidden, Invalid, NotFound, Unauthorized
from app.services.runs import MAX_MESSAGE_CHARS
from app.services.runtime import get_runtime
from app.settings import API_VERSION

log = logging.getLogger("ingram.mcp")

PATH = "/v1/deployments/{deployment_id}/mcp"
# One ask carries at most 32,000 characters; even fully \u-escaped that is under 200 KiB of JSON.
MAX_BODY_BYTES = 1024 * 1024
RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for resources/read of an unknown URI
_SCOPE_KEY = "ingram.mcp.caller"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_REALM = 'Bearer realm="ingram"'

ASK_TOOL = Tool(
    name="ask",
    title="Ask the smith",
    description=(
        "Send a message to this smith and get its reply. The smith keeps its memory and this "
        "conversation's history across calls. If one of its actions needs the owner's approval, the "
        "result says so (status awaiting_approval, with the run id) instead of waiting."
    ),
    input_schema={
        "type": "object",
        "properties": {"message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS,
                                   "description": "What to say to the smith."}},
        "required": ["message"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {
            "reply": {"type": ["string", "null"], "description": "The smith's reply text."},
            "suggested_replies": {"type": "array", "items": {"type": "string"},
                                  "description": "Quick replies the smith offers, if any."},
            "status": {"type": "string", "enum": ["completed", "awaiting_approval", "queued", "running",
                                                  "failed", "cancelled"]},
            "run_id": {"type": "string"},
            "smith_id": {"type": "string"},
            "thread_id": {"type": ["string", "null"]},
            "pending_approval": {"type": ["object", "null"]},
        },
        "required": ["reply", "suggested_replies", "status", "run_id"],
    },
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                open_world_hint=True),
)
MEMORY_TEMPLATE = ResourceTemplate(name="memory", title="Memory entry", uri_template="memory://{key}",
                                   description="One of the smith's memory entries, by key.",
                                   mime_type="text/plain")


@dataclass(frozen=True)
class Caller:
    """Who is calling and through which deployment; set on the request scope by the HTTP checks."""

    actor: Actor
    deployment_id: str


# -- Host and Origin ----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def allowed(public_url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(allowed Host values, allowed Origin values) for IC_PUBLIC_URL, plus localhost forms.

    Patterns follow the SDK's ``TransportSecuritySettings``: exact, or ``base:*`` for any port.
    """
    parts = urlsplit(public_url)
    scheme = parts.scheme or "http"
    host = (parts.hostname or "localhost").lower()
    host = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    hosts = [f"{host}:{port}"]
    origins = [f"{scheme}://{host}:{port}"]
    if port == default_port:  # browsers and clients leave a default port out of Host and Origin
        hosts.append(host)
        origins.append(f"{scheme}://{host}")
    for local in _LOCAL_HOSTS:
        hosts += [local, f"{local}:*"]
        origins += [f"{s}://{local}{p}" for s in ("http", "https") for p in ("", ":*")]
    return tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(origins))


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    return any(value == p or (p.endswith(":*") and value.startswith(p[:-1])) for p in patterns)


def check_host_origin(headers: Headers, public_url: str) -> Response | None:
    hosts, origins = allowed(public_url)
    host = headers.get("host", "")
    if not _matches(host, hosts):
        return error_response(421, "invalid_host", f"this server does not answer for host {host!r}")
    origin = headers.get("origin")
    if origin is not None and not _matches(origin, origins):
        # DNS rebinding guard: a web page from another origin may not drive this endpoint.
        return error_response(403, "invalid_origin", f"requests from origin {origin!r} are not allowed")
    return None


# -- MCP handlers ---------------------------------------------------------------------------------


def _caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    caller = getattr(request, "scope", {}).get(_SCOPE_KEY) if request is not None else None
    if not isinstance(caller, Caller):  # only reachable if the SDK were mounted without our checks
        raise MCPError(INVALID_REQUEST, "not authenticated")
    return caller


def _protocol_error(exc: DomainError) -> MCPError:
    code = INVALID_PARAMS if isinstance(exc, Invalid) else INVALID_REQUEST
    return MCPError(code, exc.message, data={"code": exc.code})


async def _list_tools(ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None) -> ListToolsResult:
    return ListToolsResult(tools=[ASK_TOOL])


async def _call_tool(ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams) -> CallToolResult:
    if params.name != ASK_TOOL.name:
        # A protocol error, as the MCP spec asks for unknown tools (not an isError result).
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}", data={"name": params.name})
    caller = _caller(ctx)
    arguments = params.arguments or {}
    unknown = sorted(set(arguments) - {"message"})
    try:
        if unknown:
            raise Invalid(f"unknown argument(s): {', '.join(unknown)}; ask takes only message")
        result = await service.ask(get_runtime().sessions, actor=caller.actor, deployment_id=caller.deployment_id,
                                   message=arguments.get("message"))
    except Invalid as exc:
        # Input problems are tool errors the calling model can read and correct (MCP tools spec).
        return CallToolResult(content=[TextContent(text=exc.message)], is_error=True)
    except DomainError as exc:
        raise _protocol_error(exc) from exc
    return CallToolResult(content=[TextContent(text=result.text())], structured_content=result.structured(),
                          is_error=result.is_error)


async def _list_resources(ctx: ServerRequestContext[Any, Any],
                          params: PaginatedRequestParams | None) -> ListResourcesResult:
    caller = _caller(ctx)
    try:
        async with get_runtime().transaction() as session:
            entries, next_cursor = await service.list_memory_resources(
                session, actor=caller.actor, deployment_id=caller.deployment_id,
                cursor=params.cursor if params else None)
    except DomainError as exc:
        raise _protocol_error(exc) from exc
    return ListResourcesResult(
        resources=[Resource(uri=service.memory_uri(e.key), name=e.key, title=f"Memory: {e.key}",
                            mime_type="text/plain", size=len(e.value.encode()),
                            description=f"Memory entry {e.key!r}, updated {e.updated_at.isoformat()}")
                   for e in entries],
        next_cursor=next_cursor,
    )


async def _list_templates(ctx: ServerRequestContext[Any, Any],
                          params: PaginatedRequestParams | None) -> ListResourceTemplatesResult:
    _caller(ctx)
    return ListResourceTemplatesResult(resource_templates=[MEMORY_TEMPLATE])


async def _read_resource(ctx: ServerRequestContext[Any, Any], params: ReadResourceRequestParams) -> ReadResourceResult:
    caller = _caller(ctx)
    try:
        async with get_runtime().transaction() as session:
            entry = await service.read_memory_resource(session, actor=caller.actor,
                                                       deployment_id=caller.deployment_id, uri=params.uri)
    except NotFound as exc:
        raise MCPError(RESOURCE_NOT_FOUND, "Resource not found", data={"uri": params.uri}) from exc
    except DomainError as exc:
        raise _protocol_error(exc) from exc
    return ReadResourceResult(contents=[TextResourceContents(uri=params.uri, mime_type="text/plain",
                                                             text=entry.value)])


def build_server() -> Server[Any]:
    return Server(
        "ingram-smith", version=API_VERSION, title="Ingram smith",
        instructions=("Talk to an Ingram smith: call the ask tool with a message and read the reply. "
                      "The smith's memory entries are readable as memory:// resources."),
        on_list_tools=_list_tools, on_call_tool=_call_tool, on_list_resources=_list_resources,
        on_list_resource_templates=_list_templates, on_read_resource=_read_resource,
        get_tool_input_schema=lambda name: ASK_TOOL.input_schema if name == ASK_TOOL.name else None,
    )


# -- HTTP ---------------------------------------------------------------------------------------


class _JsonRpcErrors:
    """Rewrites the SDK's plain-text transport errors (413 body too large, 400 wrong Content-Type)
    into JSON-RPC error bodies with the same status, which MCP clients know how to surface."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.held: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
            if message["status"] >= 400 and not content_type.startswith("application/json"):
                self.held = message
                return
        elif message["type"] == "http.response.body" and self.held is not None:
            self.body += message.get("body", b"")
            if message.get("more_body"):
                return
            text = self.body.decode(errors="replace").strip() or "request rejected"
            body = json.dumps({"jsonrpc": "2.0", "id": None,
                               "error": {"code": INVALID_REQUEST, "message": text}}).encode()
            await self.send({"type": "http.response.start", "status": self.held["status"],
                             "headers": [(b"content-type", b"application/json"),
                                         (b"content-length", str(len(body)).encode())]})
            await self.send({"type": "http.response.body", "body": body})
            self.held = None
            return
        await self.send(message)


def _unauthorized(code: str, message: str, *, invalid: bool) -> JSONResponse:
    response = error_response(401, code, message)
    # RFC 6750: no error attribute when no credentials were sent, invalid_token when they were bad.
    response.headers["WWW-Authenticate"] = (
        f'{_REALM}, error="invalid_token", error_description="{message}"' if invalid else _REALM)
    return response


class McpEndpoint:
    """The process's MCP server. ``running()`` starts the SDK's session manager (once per process,
    from the app's lifespan); each ``running()`` gets a fresh manager, since the SDK allows one
    ``run()`` per manager and tests start and stop the endpoint many times in one process."""

    def __init__(self) -> None:
        self.server = build_server()
        self.manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if self.manager is not None:
            raise RuntimeError("the MCP endpoint is already running in this process")
        hosts, origins = allowed(get_runtime().settings.public_url)
        manager = StreamableHTTPSessionManager(
            app=self.server, json_response=True, stateless=True, max_request_body_size=MAX_BODY_BYTES,
            # The same lists as check_host_origin: a second line of defence with identical rules.
            security_settings=TransportSecuritySettings(allowed_hosts=list(hosts), allowed_origins=list(origins)),
        )
        ready, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            # The manager's anyio task group must be left in the task that entered it; callers such
            # as pytest fixtures start and stop in different tasks, so one task of its own holds it.
            async with manager.run():
                self.manager = manager
                ready.set()
                try:
                    await stop.wait()
                finally:
                    self.manager = None

        task = asyncio.create_task(hold(), name="mcp-session-manager")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # it failed to start: raise that here
        try:
            yield
        finally:
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._check(scope)
        if response is not None:
            await response(scope, receive, send)
            return
        manager = self.manager
        if manager is None:  # stopped (shutdown) while the checks ran
            await error_response(503, "mcp_not_running", "the MCP endpoint is shutting down")(scope, receive, send)
            return
        await manager.handle_request(scope, receive, _JsonRpcErrors(send))

    async def _check(self, scope: Scope) -> Response | None:
        """The HTTP checks of the module docstring; sets the caller on the scope when all pass."""
        headers = Headers(scope=scope)
        runtime = get_runtime()
        rejected = check_host_origin(headers, runtime.settings.public_url)
        if rejected is not None:
            return rejected
        if scope["method"] != "POST":
            response = error_response(405, "method_not_allowed",
                                      f"{scope['method']} is not allowed here: send JSON-RPC messages with POST")
            response.headers["Allow"] = "POST"
            return response
        if self.manager is None:
            return error_response(503, "mcp_not_running", "the MCP endpoint is not running in this process")
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _unauthorized("missing_token", "send Authorization: Bearer <token>", invalid=False)
        deployment_id = str(scope.get("path_params", {}).get("deployment_id", ""))
        try:
            async with runtime.transaction() as session:
                # A caller token is accepted only here, and only on its own deployment (issue 13).
                actor = await tokens.authenticate(session, value.strip(), mcp_deployment_id=deployment_id)
                await service.authorize(session, actor=actor, deployment_id=deployment_id)
        except Unauthorized as exc:
            return _unauthorized(exc.code, exc.message, invalid=True)
        except (NotFound, Forbidden) as exc:
            return error_response(404 if isinstance(exc, NotFound) else 403, exc.code, exc.message)
        scope[_SCOPE_KEY] = Caller(actor=actor, deployment_id=deployment_id)
        return None


_endpoint: McpEndpoint | None = None


def get_endpoint() -> McpEndpoint:
    """The process's endpoint, built on first use (never at import)."""
    global _endpoint
    if _endpoint is None:
        _endpoint = McpEndpoint()
    return _endpoint


class _Route:
    """The ASGI app of the route; looks the endpoint up per request so importing builds nothing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await get_endpoint()(scope, receive, send)


def mount(api: FastAPI) -> None:
    """Adds the MCP route; call before the /v1 catch-all so it wins."""
    api.add_route(PATH, _Route(), include_in_schema=False)


def running() -> contextlib.AbstractAsyncContextManager[None]:
    """Start this process's MCP session manager (the app's lifespan, and tests)."""
    return get_endpoint().running()
