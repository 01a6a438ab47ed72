"""A raw HTTP/1.1 client on a plain socket: the request goes out byte for byte as the corpus says.

httpx (like every client library) writes its own ``Content-Length`` and refuses a lying one, so the
requests whose framing is the attack (a length above or below the body, two lengths, a length and a
chunked body) could not be sent through it. Every attack goes through this one path instead, so they
all reach the server the same way.

The answer is read while the request is still being written: a server may refuse a large body from its
Content-Length alone, answer 413 and close while the client is still sending, and a client that read
only after writing would see a broken pipe instead of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass(frozen=True)
class Answer:
    """What the server said; ``status`` 0 when it closed the connection (or went quiet) without
    answering."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    note: str = ""


@dataclass(frozen=True)
class Wire:
    """One request as bytes: ``head`` (request line and headers, CRLF-terminated) then ``body``.
    ``hold_open_s``: when no answer came that long after writing, half-close the connection (a length
    that promised more than was sent keeps the server waiting for the rest)."""

    head: bytes
    body: bytes
    hold_open_s: float = 0.0


def build_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _complete(received: bytes) -> bool:
    """A whole answer: its head, and as much body as its Content-Length says."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False  # no length: the answer ends when the server closes (the request said Connection: close)


async def send(host: str, port: int, wire: Wire, *, timeout_s: float = 20.0) -> Answer:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setblocking(False)
    received = bytearray()
    problems: list[str] = []

    async def read() -> None:
        try:
            while not _complete(bytes(received)):
                chunk = await loop.sock_recv(sock, CHUNK)
                if not chunk:
                    return
                received.extend(chunk)
        except OSError as exc:
            problems.append(f"reading: {exc!r}")

    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout_s)
        reader = asyncio.create_task(read())
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, wire.head + wire.body), timeout_s)
        except (OSError, TimeoutError) as exc:  # the server answered early and stopped reading
            problems.append(f"writing: {exc!r}")
        if wire.hold_open_s:
            await asyncio.wait({reader}, timeout=wire.hold_open_s)
            if not reader.done():
                # Say that no more is coming, and read what the server makes of a body shorter than
                # promised. Only here: granian drops the answer to a request whose client half-closed,
                # so a complete request keeps its side open.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        try:
            await asyncio.wait_for(reader, timeout_s)
        except TimeoutError:
            problems.append("no answer in time")
    finally:
        sock.close()
    return _answer(bytes(received), "; ".join(problems))


def _answer(received: bytes, note: str) -> Answer:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return Answer(0, note=f"no answer ({len(received)} bytes){': ' + note if note else ''}")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0, headers, body, note)
