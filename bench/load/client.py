"""A raw HTTP/1.1 keep-alive client on asyncio streams, standard library only: about 100 µs
of client CPU a request, so a few processes outrun one model_api (aiohttp or httpx would not).
It POSTs Content-Length bodies and reads Content-Length or chunked answers."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

REQUEST_TIMEOUT_S = 30.0
IDLE_S = 15.0  # a pooled connection idle longer is not reused: the server may be closing it
ERRORS = (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
"""What a failed request raises (the last two: an answer that is not HTTP/1.1)."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server will close: Content-Length or chunked bodies."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if not chunked:
        return status, await reader.readexactly(length), close
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        parts.append((await reader.readexactly(size + 2))[:-2])  # each chunk ends in CRLF
        if size == 0:
            return status, b"".join(parts), close


class Connection:
    """One keep-alive connection POSTing to `url`, (re)opened by the first request after an
    error or the server's `Connection: close`."""

    def __init__(self, url: str, content_type: str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: "
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.idle_since = 0.0

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Status and body of the answer; one of `ERRORS` (the connection closed) when the
        request fails or takes longer than the timeout, connecting included."""
        try:
            async with asyncio.timeout(self.timeout):
                if self.streams is None:
                    self.streams = await asyncio.open_connection(self.host, self.port)
                reader, writer = self.streams
                writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
                status, answer, close = await read_response(reader)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        self.idle_since = time.monotonic()
        return status, answer

    def reusable(self) -> bool:
        """Open, not closed by the server while idle, and not idle for too long."""
        idle = time.monotonic() - self.idle_since
        return self.streams is not None and not self.streams[0].at_eof() and idle < IDLE_S

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class Pool:
    """Connections for concurrent requests: an idle one when there is one, else a new one.
    The caller bounds how many requests are in flight."""

    def __init__(self, url: str, content_type: str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.url, self.content_type, self.timeout = url, content_type, timeout
        self.idle: list[Connection] = []

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """As `Connection.post`."""
        while self.idle and not self.idle[-1].reusable():
            self.idle.pop().close()
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = Connection(self.url, self.content_type, self.timeout)
        answer = await connection.post(body)
        if connection.streams is not None:
            self.idle.append(connection)
        return answer

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
