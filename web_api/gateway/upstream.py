"""A lean HTTP/1.1 keep-alive client for the one upstream the gateway talks to: model_api.

Why not a general client: the gateway forwards every request, so the client's cost is paid
on every cache hit. This one, asyncio protocols with httptools (the parser uvicorn uses),
costs a fraction of aiohttp's CPU per forwarded request (bench/upstream_client.py measures
both). It does only what the gateway needs: one host,
bodies in memory, Content-Length or chunked answers.

- A bounded pool: waiting for a free connection is not a failure (`pool_timeout` bounds it),
  and a connect that fails or times out is told apart from it.
- Every replica gets its share: the host name is resolved (again every `resolve_seconds`,
  and at once after a failed connect) to all its addresses, as Docker's DNS round-robin
  (`endpoint_mode: dnsrr`) or a Kubernetes headless Service give them, and requests take
  the addresses in turn, each with its own keep-alive connections. An address that refuses
  a connection is skipped for `balancing.DOWN_SECONDS` and the request goes to the next one.
- Every worker of a replica gets its share. model_api names the worker process that answered
  (`x-mlserve-worker`) and how many answer on its port (`x-mlserve-workers`). A request
  takes an idle connection to the worker with the fewest requests under way from here, of
  those the one sent to least recently (then its most recently used connection): the policy
  is `balancing.py`'s, this pool only keeps the connections and tells it what was sent to
  whom. The kernel hands each new connection to a worker of its choosing, so
  while some worker has none of an address's connections, requests open new ones (up to
  `DISCOVERY_CONNECTIONS` per worker) instead of reusing.
- Idle connections are dropped after `idle_seconds`, shorter than model_api's keep-alive,
  so the server never closes one under a request. If a reused connection fails before any
  byte of an answer came back anyway, the request is sent once more on a fresh one
  (everything the gateway forwards is idempotent).
- A connection never falls one answer behind: HTTP/1.1 pairs answers with requests by order
  alone, so a connection that received anything it was not waiting for (a byte after an
  answer, or while idle in the pool) is closed at once and never reused. Interim answers
  (1xx: 100 Continue, 103 Early Hints) are skipped, the request waits for its final one;
  101 Switching Protocols, a status outside 100-599 or an answer the parser refuses breaks
  the exchange and closes the connection. An HTTP/1.0 answer or `Connection: close` closes
  the connection after the answer.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from mlserve_common.runtime.observability import WORKER_HEADER, WORKERS_HEADER
from web_api.gateway.balancing import Address, AddressRotation, WorkerBalance

Resolver = Callable[[], Awaitable[list[Address]]]

DISCOVERY_CONNECTIONS = 8
"""Per worker an address announces: how many connections may be opened to reach them all."""

SMALL_BODY_BYTES = 64 * 1024
"""Bodies up to this size go out in one write with the head (one system call)."""


class UpstreamConnectError(ConnectionError):
    """No connection could be made (refused, unreachable, or `connect_timeout` passed)."""


class UpstreamDisconnected(ConnectionError):
    """The connection closed or broke before the whole answer came back; `answered`: some
    of the answer had arrived (the request reached the server)."""

    answered = False


class PoolExhausted(TimeoutError):
    """Every connection stayed busy for `pool_timeout`."""


class _Unexpected(Exception):
    """Raised in a parser callback: what came back is not the answer to the request sent."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.answered_bytes = False
        self.idle_since = time.monotonic()
        self.address: Address | None = None
        self.worker: bytes | None = None  # the server's worker process, once it has answered
        self.workers = 1  # how many workers answer on its port, as it said
        self.on_lost: Callable[[_Connection], None] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._future: asyncio.Future[Answer] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._keep_alive = True
        self._expecting = False  # a request is out and its final answer not complete yet

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._expecting:  # while idle: an answer to no request, never to be read as one
            self.close()
            return
        self.answered_bytes = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(
                UpstreamDisconnected(f"unreadable answer from upstream: {exc.__cause__ or exc}")
            )
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.on_lost is not None:
            self.on_lost(self)
        self._fail(UpstreamDisconnected("upstream closed the connection"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if not self._expecting:  # more after the answer, in the same read
            raise _Unexpected("bytes after the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        # An HTTP/1.0 answer keeps alive only with `Connection: keep-alive`: the version
        # (a string made per call) is looked at only then. Such a connection closes.
        if keep_alive and b"connection" in self._headers:
            keep_alive = self._parser.get_http_version() == "1.1"
        self._keep_alive = keep_alive

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status, headers = self._parser.get_status_code(), self._headers
        if not 200 <= status <= 599:
            if not 100 <= status <= 199 or status == 101:  # 101: not HTTP any more
                raise _Unexpected(f"status {status}")
            self._headers, self._body = {}, []  # interim (1xx): the final answer follows
            return
        self._expecting = False
        answer = Answer(status, headers, b"".join(self._body))
        self._headers, self._body = {}, []  # what may follow must not touch this answer
        self.worker = headers.get(WORKER_HEADER, self.worker)
        workers = headers.get(WORKERS_HEADER)
        if workers is not None and workers.isdigit():
            self.workers = int(workers)
        if not self._keep_alive:
            self.close()
        if self._future is not None and not self._future.done():
            self._future.set_result(answer)

    # use
    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive

    async def exchange(self, data: tuple[bytes, ...]) -> Answer:
        if self.closed or self.transport is None:
            raise UpstreamDisconnected("upstream closed the connection")
        self._future = asyncio.get_running_loop().create_future()
        self.answered_bytes, self._expecting = False, True
        for part in data:
            self.transport.write(part)
        try:
            return await self._future
        except UpstreamDisconnected as exc:
            exc.answered = self.answered_bytes
            raise
        finally:
            self._future = None
            self.idle_since = time.monotonic()

    def _fail(self, exc: Exception) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Keep-alive connections to one `http://host:port`, at most `limit` at a time."""

    def __init__(
        self,
        base_url: str,
        limit: int,
        connect_timeout: float,
        pool_timeout: float,
        idle_seconds: float,
        resolve_seconds: float = 2.0,
        resolver: Resolver | None = None,
    ) -> None:
        """`resolver` (for tests) replaces the name lookup: the addresses to spread over."""
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:  # no TLS: model_api has none
            raise ValueError(f"upstream URL must be http://host[:port], not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode("ascii")
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.idle_seconds = idle_seconds
        self.resolve_seconds = resolve_seconds
        self._resolver = resolver or self._look_up
        self._slots = asyncio.Semaphore(limit)
        self._idle: dict[Address, list[_Connection]] = {}
        self._addresses: list[Address] = []
        self._resolved_at = float("-inf")
        self._rotation = AddressRotation()  # which address next; those that refused, left out
        self._balance = WorkerBalance()  # requests under way and latest send, per worker
        self._live: dict[Address, set[_Connection]] = {}  # open connections, idle or busy

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> Answer:
        """Send one request and read its whole answer within `timeout` (TimeoutError), once a
        connection is free (PoolExhausted after `pool_timeout`)."""
        data = self._encode(method, target, headers, body)
        try:
            async with asyncio.timeout(self.pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolExhausted("every upstream connection stayed busy") from None
        try:
            async with asyncio.timeout(timeout):
                return await self._send(data)
        finally:
            self._slots.release()

    async def _send(self, data: tuple[bytes, ...]) -> Answer:
        address, others = await self._pick()
        try:
            return await self._attempt(address, data)
        except UpstreamDisconnected as exc:
            if exc.answered or not others:
                raise
            failed = exc
        except UpstreamConnectError as exc:
            if not others:
                raise
            failed = exc
        # That replica is gone (refused, or dropped the request before any byte of an
        # answer): everything the gateway forwards is idempotent, so the next one gets it.
        try:
            return await self._attempt(others[0], data)
        except (UpstreamConnectError, UpstreamDisconnected):
            raise failed from None

    async def _attempt(self, address: Address, data: tuple[bytes, ...]) -> Answer:
        connection = None if self._discovering(address) else self._take_idle(address)
        if connection is not None:
            try:
                return await self._send_on(connection, data)
            except UpstreamDisconnected as exc:
                if exc.answered:
                    raise
                # A kept-alive connection the server had just closed: the request never
                # reached it, so it goes once more on a fresh connection.
        return await self._send_on(await self._connect(address), data)

    async def _pick(self) -> tuple[Address, list[Address]]:
        """The next address in turn, and the other live ones to fall back on."""
        now = time.monotonic()
        if now - self._resolved_at > self.resolve_seconds or not self._addresses:
            await self._resolve(now)
        return self._rotation.pick(self._addresses, now)

    async def _resolve(self, now: float) -> None:
        try:
            addresses = await self._resolver()
        except OSError as exc:
            if not self._addresses:
                raise UpstreamConnectError(f"cannot resolve {self.host}: {exc}") from exc
            return  # keep the last known addresses
        self._addresses = addresses or self._addresses
        self._resolved_at = now
        for gone in set(self._live) - set(self._addresses):
            del self._live[gone]  # its busy connections close when done
        for gone in set(self._idle) - set(self._addresses):  # a replica that left
            for connection in self._idle.pop(gone):
                connection.close()

    async def _look_up(self) -> list[Address]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        )
        return sorted({(info[4][0], info[4][1]) for info in infos})

    async def _send_on(self, connection: _Connection, data: tuple[bytes, ...]) -> Answer:
        worker = connection.worker  # as sent: a fresh connection's first answer sets it
        self._balance.sent(worker)
        try:
            answer = await connection.exchange(data)
        except BaseException:  # broken, timed out or cancelled mid-exchange: it is spent
            connection.close()
            raise
        finally:
            self._balance.done(worker)
        self._keep(connection)
        return answer

    def _keep(self, connection: _Connection) -> None:
        if connection.reusable and connection.address in self._idle:
            self._idle[connection.address].append(connection)
        elif connection.reusable and connection.address in self._addresses:
            self._idle[connection.address] = [connection]
        else:
            connection.close()

    def _take_idle(self, address: Address) -> _Connection | None:
        """An idle connection to `address`, as the worker balance picks it (of the worker with
        the fewest requests under way, the one sent to least recently, its most recently used
        connection: the least likely to be stale). Stale ones are closed on the way."""
        idle = self._idle.get(address)
        if not idle:
            return None
        now = time.monotonic()
        stale = [c for c in idle if not c.reusable or now - c.idle_since >= self.idle_seconds]
        if stale:
            for connection in stale:
                connection.close()
            idle[:] = [c for c in idle if not c.closed]
            if not idle:
                return None
        return idle.pop(self._balance.pick([c.worker for c in idle]))

    def _discovering(self, address: Address) -> bool:
        """Whether a worker of `address` has none of its connections yet, and the budget for
        reaching it is not spent."""
        live = self._live.get(address)
        if not live:
            return False
        workers = max(c.workers for c in live)
        if workers <= 1 or len(live) >= workers * DISCOVERY_CONNECTIONS:
            return False
        return len({c.worker for c in live if c.worker is not None}) < workers

    async def _connect(self, address: Address) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(_Connection, address[0], address[1])
        except TimeoutError as exc:
            self._mark_down(address)
            raise UpstreamConnectError("connecting to upstream timed out") from exc
        except OSError as exc:
            self._mark_down(address)
            raise UpstreamConnectError(f"cannot connect to upstream: {exc.strerror}") from exc
        connection.address = address
        live = self._live.setdefault(address, set())
        live.add(connection)
        connection.on_lost = live.discard
        return connection

    def _mark_down(self, address: Address) -> None:
        self._rotation.mark_down(address, time.monotonic())
        self._resolved_at = float("-inf")  # look the name up again on the next request

    def _encode(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[bytes, ...]:
        """The request as parts to write: one for a small body, the body apart for a large
        one (never copied into a second buffer)."""
        lines = [f"{method} {target} HTTP/1.1".encode("ascii"), b"Host: " + self.host_header]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} holds a line break")
            lines.append(f"{name}: {value}".encode("latin-1"))
        lines.append(b"Content-Length: %d" % len(body))
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        return (head + body,) if len(body) <= SMALL_BODY_BYTES else (head, body)

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
