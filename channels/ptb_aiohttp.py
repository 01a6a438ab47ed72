"""python-telegram-bot's networking backend over aiohttp (PTB's ``BaseRequest`` extension point).

PTB still builds every Bot API call and parses every answer; only the HTTP transport differs from
its default ``HTTPXRequest``. Why: on the outbox's hot path a send through httpx cost about 3.3 ms of
CPU and through aiohttp 0.8 ms (bench/README.md), and aiohttp is already installed for slack_sdk.
A connection-level failure (a keep-alive connection the server already closed) is retried once,
as DESIGN §11 asks: such a request never reached Telegram.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from channels.redact import redact

log = logging.getLogger(__name__)


class AiohttpRequest(BaseRequest):
    """One aiohttp session (a pool of ``pool_size`` keep-alive connections) per instance.

    The session is opened on first use in the running event loop, and opened again if it is then
    used from another loop (tests start one loop per test; aiohttp sessions belong to one loop)."""

    def __init__(self, *, pool_size: int = 16, connect_timeout: float | None = 5.0,
                 read_timeout: float | None = 10.0, write_timeout: float | None = 10.0,
                 pool_timeout: float | None = 5.0) -> None:
        self.pool_size = pool_size
        self._timeouts = {"connect": connect_timeout, "read": read_timeout, "write": write_timeout,
                          "pool": pool_timeout}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        self._open()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # An older loop's session is dropped, not closed: closing it needs that loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size), headers={"User-Agent": self.USER_AGENT})
            self._loop = loop
        return self._session

    def _timeout(self, name: str, given: Any) -> float | None:
        return self._timeouts[name] if isinstance(given, DefaultValue) else given

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE, write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        connect = self._timeout("connect", connect_timeout)
        pool = self._timeout("pool", pool_timeout)
        # aiohttp counts waiting for a pooled connection inside its connect timeout.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_read=self._timeout("read", read_timeout),
            connect=None if connect is None and pool is None else (connect or 0) + (pool or 0))
        try:
            return await self._send(url, method, request_data, timeout)
        except aiohttp.ClientConnectionError as exc:
            log.info("telegram: retrying after a connection error: %s", redact(str(exc)))
        try:
            return await self._send(url, method, request_data, timeout)
        except aiohttp.ClientConnectionError as exc:
            raise NetworkError(redact(f"aiohttp.{type(exc).__name__}: {exc}")) from exc

    async def _send(self, url: str, method: str, request_data: RequestData | None,
                    limits: aiohttp.ClientTimeout) -> tuple[int, bytes]:
        try:
            async with self._open().request(method, url, data=_body(request_data), timeout=limits) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # before ClientConnectionError: ServerTimeoutError is both
            raise TimedOut from exc
        except aiohttp.ClientConnectionError:
            raise  # the caller retries it once
        except aiohttp.ClientError as exc:
            raise NetworkError(redact(f"aiohttp.{type(exc).__name__}: {exc}")) from exc


def _body(request_data: RequestData | None) -> Any:
    """Form fields as PTB's own backend sends them; multipart when the call uploads files."""
    if request_data is None:
        return None
    if not request_data.contains_files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
