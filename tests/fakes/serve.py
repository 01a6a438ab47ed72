"""Serve an ASGI app on 127.0.0.1 (a free port) inside the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Yields the base URL (``http://127.0.0.1:PORT``) while the app is served."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def bind_local(port: int = 0) -> socket.socket:
    """A listening-ready TCP socket on 127.0.0.1 (0: a free port)."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without
    # it every answer stalled about 40 ms (Nagle against the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def uvicorn_server(app: Any) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                         timeout_graceful_shutdown=2))


@contextlib.contextmanager
def serve_in_thread(app: Any, name: str) -> Iterator[str]:
    """Serve ``app`` from a background thread (its latency never blocks the test's event loop) on a free
    port; yields the base URL while it is served."""
    sock = bind_local()
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=name)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError(f"{name} did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def serve_here(app: Any, port: int, what: str, on_url: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` in this process until it is stopped (a benchmark runs a fake on its own)."""
    sock = bind_local(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    if on_url is not None:
        on_url(url)
    print(f"{what} at {url}", flush=True)
    uvicorn_server(app).run(sockets=[sock])


@contextlib.asynccontextmanager
async def off_loop(manager: contextlib.AbstractContextManager[T]) -> AsyncIterator[T]:
    """A blocking context manager (a fake's start and stop) entered and left off the event loop."""
    value = await asyncio.to_thread(manager.__enter__)
    try:
        yield value
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
