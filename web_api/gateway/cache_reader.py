"""A lean Redis GET for the gateway: one pipelined connection per worker, hiredis to parse.

The gateway asks Redis once per image, hit or miss, so the client's cost is paid on every
request. redis-py's asyncio client took about a fifth of a gateway worker's CPU under
unique-image load (py-spy; bench/results/profile_gateway_hits.md). Redis answers the
commands of one connection in order, so one connection carries every concurrent GET: each
is a future, resolved in turn as hiredis parses the replies, and the GETs of one turn of
the event loop go out in one write.

It does only what the gateway needs: AUTH (and SELECT) from the URL, then GET. A failed
connect, a broken connection or a reply slower than `timeout` raises `CacheReadError` (an
OSError); the next call connects again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import unquote, urlsplit

import hiredis

from mlserve_common.resp import command


class CacheReadError(OSError):
    """Redis could not be asked, or answered with an error."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future] = deque()
        self.transport: asyncio.Transport | None = None
        self.alive = True
        self._outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():  # a caller that timed out still takes its reply's turn
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(CacheReadError(f"Redis closed the connection ({exc})"))

    def send(self, command: bytes) -> asyncio.Future:
        """Queue `command`; the commands of one turn of the event loop go out in one write."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(future)
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.alive:
            self.transport.write(b"".join(outgoing))  # type: ignore[union-attr]


class CacheReader:
    """`await reader.get(key)`: the value, or None; `CacheReadError` when Redis is away."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.strip("/") or 0)
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task | None = None

    async def get(self, key: str) -> bytes | None:
        connection = self._connection
        if connection is None or not connection.alive:
            connection = await self._connect()
        reply = await self._ask(connection, command(b"GET", key.encode()))
        return reply if reply is None else bytes(reply)

    async def close(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None

    async def _ask(self, connection: _Connection, command: bytes) -> object:
        try:
            async with asyncio.timeout(self.timeout):
                reply = await connection.send(command)
        except TimeoutError as exc:
            raise CacheReadError(f"Redis did not answer within {self.timeout} s") from exc
        if isinstance(reply, hiredis.ReplyError):
            raise CacheReadError(f"Redis refused: {reply}")
        return reply

    async def _connect(self) -> _Connection:
        """One connection at a time, shared by every caller waiting for it."""
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._open())
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise CacheReadError(f"cannot reach Redis at {self.host}:{self.port} ({exc})") from exc
        try:
            if self.password is not None:
                auth = [self.username.encode()] if self.username else []
                await self._ask(connection, command(b"AUTH", *auth, self.password.encode()))
            if self.db:
                await self._ask(connection, command(b"SELECT", str(self.db).encode()))
        except CacheReadError:
            connection.transport.close()  # type: ignore[union-attr]
            raise
        self._connection = connection
        return connection
