"""A lean asyncio Redis client for the hot path: one pipelined connection, hiredis to parse.

Both services talk to Redis on every request: the gateway reads the prediction cache, and
model_api claims a lease and stores each answer. redis-py's asyncio client was a large
share of both workers' CPU under load (py-spy; bench/results/profile_gateway_hits.md,
profile_model_api_misses.md): a pool
checkout, a command packer and a stream write per command. Redis answers the commands of
one connection in order, so one connection carries every concurrent command: each is a
future, resolved in turn as hiredis parses the replies, and the commands of one turn of the
event loop go out in one write. `python -m bench.redis_client` measures it against redis-py.

It does what the services need: AUTH (and SELECT) from the URL, then any command. A failed
connect, a broken connection, a reply slower than `timeout` or an error reply raises
`RedisPipeError` (an OSError; `.reply` holds Redis's own error text, if that was it); the
next call connects again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Annotated
from urllib.parse import unquote, urlsplit

import hiredis
from pydantic import AfterValidator

from mlserve_common.stdlib_only.resp import command


def checked_redis_url(url: str) -> str:
    """`url` when it says what this client does: `redis://[[user]:password@]host[:port][/db]`.
    Anything else is a ValueError that names the problem, so that a setting the client would
    misread (`rediss://` would connect in plain text) stops the service at start."""
    parts = urlsplit(url)
    if parts.scheme == "rediss":
        raise ValueError(
            f"{url.split('@')[-1]!r}: rediss:// (Redis over TLS) is not supported; the stack's "
            "Redis is reachable only inside its private network, so use redis://"
        )
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(
            f"a Redis URL is redis://[[user]:password@]host[:port][/db], not "
            f"{parts.scheme + '://' if parts.scheme else 'one without a scheme'}"
        )
    database = parts.path.strip("/")
    if database and not (database.isascii() and database.isdigit()):
        raise ValueError(f"the Redis database is a number (redis://host:port/0), not {database!r}")
    parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
    return url


def _checked_or_empty(url: str) -> str:
    return checked_redis_url(url) if url else url


RedisUrl = Annotated[str, AfterValidator(_checked_or_empty)]
"""A setting's Redis URL: `checked_redis_url`, or empty (no Redis)."""


class RedisPipeError(OSError):
    """Redis could not be asked, or answered with an error (then `reply` is its text)."""

    def __init__(self, message: str, reply: str | None = None) -> None:
        super().__init__(message)
        self.reply = reply


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
                future.set_exception(RedisPipeError(f"Redis closed the connection ({exc})"))

    def send(self, commands: list[bytes]) -> list[asyncio.Future]:
        """Queue `commands`; the commands of one turn of the event loop go out in one write."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        if not self.alive:  # lost after the caller took it: fail now, not at the timeout
            for future in futures:
                future.set_exception(RedisPipeError("Redis closed the connection"))
            return futures
        self.waiting.extend(futures)
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.extend(commands)
        return futures

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if not self.alive:  # connection_lost has failed their futures already
            return
        try:
            self.transport.write(b"".join(outgoing))  # type: ignore[union-attr]
        except (OSError, RuntimeError) as exc:  # uvloop: "the handler is closed"
            self.connection_lost(exc)


Command = tuple[bytes | str, ...]


class RedisPipe:
    """`await pipe.call("GET", key)`: Redis's reply (bytes, int, list or None);
    `RedisPipeError` when Redis is away or refuses."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(checked_redis_url(url))
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.strip("/") or 0)
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task | None = None

    async def call(self, *parts: bytes | str) -> object:
        (reply,) = await self.pipeline(parts)
        return reply

    async def pipeline(self, *commands: Command) -> list[object]:
        """Several commands in one write; their replies, in order. An error reply raises
        (after every reply has come, so the connection stays in step)."""
        connection = self._connection
        if connection is None or not connection.alive:
            connection = await self._connect()
        return await self._ask(connection, [command(*parts) for parts in commands])

    async def close(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None

    async def _ask(self, connection: _Connection, commands: list[bytes]) -> list[object]:
        futures = connection.send(commands)
        try:
            async with asyncio.timeout(self.timeout):
                if len(futures) == 1:
                    replies = [await futures[0]]
                else:  # gather: a lost connection's other errors are retrieved, not logged
                    replies = await asyncio.gather(*futures)
        except TimeoutError as exc:
            raise RedisPipeError(f"Redis did not answer within {self.timeout} s") from exc
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise RedisPipeError(f"Redis refused: {reply}", str(reply))
        return replies

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
            raise RedisPipeError(f"cannot reach Redis at {self.host}:{self.port} ({exc})") from exc
        try:
            if self.password is not None:
                auth = [self.username] if self.username else []
                await self._ask(connection, [command("AUTH", *auth, self.password)])
            if self.db:
                await self._ask(connection, [command("SELECT", str(self.db))])
        except RedisPipeError:
            connection.transport.close()  # type: ignore[union-attr]
            raise
        self._connection = connection
        return connection
