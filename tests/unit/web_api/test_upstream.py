"""The gateway's own HTTP/1.1 pool against real TCP servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from harness.raw_http import read_request, serve
from web_api.gateway.errors import GatewaySaturatedError, ModelApiUnavailableError
from web_api.gateway.model_client import ModelApiClient
from web_api.gateway.upstream import Answer, UpstreamDisconnected, UpstreamPool

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def test_a_connection_the_server_closed_while_idle_is_retried_once() -> None:
    requests: list[bytes] = []

    async def answer_once_then_hang_up(reader, writer) -> None:
        requests.append(await read_request(reader))
        writer.write(OK)  # keep-alive promised, but the server closes right after
        await writer.drain()
        writer.close()

    server, url = await serve(answer_once_then_hang_up)
    async with server:
        pool = UpstreamPool(url, limit=4, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        answers = []
        for _ in range(5):
            answers.append(await pool.request("POST", "/p", {"x-request-id": "r"}, b"body"))
            await asyncio.sleep(0.05)  # the close has arrived: the pooled connection is dead
        await pool.close()
    assert [a.status for a in answers] == [200] * 5 and answers[0].body == b"{}"
    assert len(requests) == 5 and all(r.endswith(b"\r\n\r\nbody") for r in requests)


async def test_a_reset_right_after_sending_is_retried_on_a_fresh_connection() -> None:
    connections = 0

    async def first_keeps_alive_then_drops(reader, writer) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        if connections == 1:  # the next request on this connection is read, then dropped
            await read_request(reader)
        writer.close()

    server, url = await serve(first_keeps_alive_then_drops)
    async with server:
        pool = UpstreamPool(url, limit=1, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        first = await pool.request("GET", "/a", {})
        second = await pool.request("GET", "/b", {})
        await pool.close()
    assert (first.status, second.status, connections) == (200, 200, 2)


async def test_waiting_for_a_busy_pool_is_503_saturated_with_retry_after() -> None:
    release = asyncio.Event()

    async def slow(reader, writer) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(OK)
        await writer.drain()
        writer.close()

    server, url = await serve(slow)
    async with server:
        client = ModelApiClient(url, timeout=5, connect_timeout=1, pool_size=1, pool_timeout=0.2)
        busy = asyncio.ensure_future(client.request("GET", "/slow"))
        await asyncio.sleep(0.05)
        with pytest.raises(GatewaySaturatedError) as refused:
            await client.request("GET", "/slow")
        release.set()
        busy.cancel()
        await client.close()
    assert refused.value.status_code == 503 and refused.value.headers == {"Retry-After": "1"}
    assert "saturated" in refused.value.message


async def test_nothing_listening_is_503_unavailable() -> None:
    server, url = await serve(lambda r, w: None)
    server.close()
    await server.wait_closed()
    client = ModelApiClient(url, timeout=2, connect_timeout=1)
    with pytest.raises(ModelApiUnavailableError) as refused:
        await client.request("GET", "/health/ready")
    await client.close()
    assert "connection refused" in refused.value.message


async def test_chunked_answers_and_header_injection() -> None:
    async def chunked(reader, writer) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        await writer.drain()

    server, url = await serve(chunked)
    async with server:
        client = ModelApiClient(url, timeout=2, connect_timeout=1)
        answer = await client.request("GET", "/c")
        with pytest.raises(ValueError, match="line break"):
            await client.request("GET", "/c", headers={"x-request-id": "a\r\nInjected: 1"})
        await client.close()
    assert (answer.status, answer.body, answer.content_type) == (200, b"abcde", "text/plain")


async def replicas(*hosts: str) -> tuple[list[asyncio.Server], int, dict[str, int]]:
    """One server per loopback address, all on the same port (as replicas of a service are),
    counting the requests each answers."""
    counts = {host: 0 for host in hosts}

    def handler_for(host: str):
        async def handle(reader, writer) -> None:
            try:
                while True:
                    await read_request(reader)
                    counts[host] += 1
                    writer.write(OK)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        return handle

    first = await asyncio.start_server(handler_for(hosts[0]), hosts[0], 0)
    port = first.sockets[0].getsockname()[1]
    others = [await asyncio.start_server(handler_for(h), h, port) for h in hosts[1:]]
    return [first, *others], port, counts


async def test_requests_are_spread_over_every_replica_and_skip_one_that_is_gone() -> None:
    servers, port, counts = await replicas("127.0.0.2", "127.0.0.3", "127.0.0.4")
    addresses = [("127.0.0.2", port), ("127.0.0.3", port)]

    async def resolver() -> list[tuple[str, int]]:
        return list(addresses)

    pool = UpstreamPool(
        f"http://model_api:{port}",
        limit=8,
        connect_timeout=1,
        pool_timeout=1,
        idle_seconds=30,
        resolve_seconds=0.2,
        resolver=resolver,
    )
    for _ in range(20):
        assert (await pool.request("POST", "/p", {}, b"x")).status == 200
    assert counts == {"127.0.0.2": 10, "127.0.0.3": 10, "127.0.0.4": 0}

    addresses.append(("127.0.0.4", port))  # a replica joins: found at the next lookup
    await asyncio.sleep(0.3)
    for _ in range(30):
        assert (await pool.request("POST", "/p", {}, b"x")).status == 200
    assert counts["127.0.0.4"] == 10

    servers[0].close()  # a replica dies: its idle connections break, new ones are refused
    await servers[0].wait_closed()
    for idle in pool._idle.get(("127.0.0.2", port), []):
        idle.close()
    before = dict(counts)
    statuses = [(await pool.request("POST", "/p", {}, b"x")).status for _ in range(30)]
    assert statuses == [200] * 30  # none failed: each went to a live replica instead
    assert counts["127.0.0.2"] == before["127.0.0.2"]
    assert (
        counts["127.0.0.3"] + counts["127.0.0.4"] == before["127.0.0.3"] + before["127.0.0.4"] + 30
    )
    await pool.close()
    for server in servers[1:]:
        server.close()


async def test_a_request_goes_to_the_worker_with_the_fewest_requests_under_way() -> None:
    """Three connections, to workers a, a and b (as the kernel may spread them). While a
    slow request holds one of a's, the next goes to b, not to the most recently used."""
    workers = ["a", "a", "b"]
    arrived: list[bytes] = []
    gates = [asyncio.Event() for _ in workers]  # each connection's first answer, in turn
    release, slow_arrived = asyncio.Event(), asyncio.Event()

    async def worker_server(reader, writer) -> None:
        name = workers[len(arrived)].encode()
        arrived.append(name)
        gate = gates[len(arrived) - 1]
        while True:
            try:
                request = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if b" /hold " in request:
                await gate.wait()
            elif b" /slow " in request:
                slow_arrived.set()
                await release.wait()
            writer.write(
                b"HTTP/1.1 200 OK\r\nx-mlserve-worker: "
                + name
                + b"\r\ncontent-length: 1\r\n\r\n"
                + name
            )
            await writer.drain()

    server, url = await serve(worker_server)
    async with server:
        pool = UpstreamPool(url, limit=8, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        waiting = {asyncio.create_task(pool.request("GET", "/hold", {})) for _ in workers}
        while len(arrived) < len(workers):  # three requests held: three connections
            await asyncio.sleep(0.001)
        for gate in reversed(gates):  # answered last-opened first, each seen before the next
            gate.set()
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1
        assert (done.pop().result()).body == b"a"  # the most recently used: worker a's
        slow = asyncio.create_task(pool.request("GET", "/slow", {}))
        await slow_arrived.wait()  # on the most recently used connection: worker a's
        fast = await pool.request("GET", "/fast", {})
        release.set()
        assert (await slow).body == b"a"
        assert fast.body == b"b"  # a has a request under way; b has none
        await pool.close()


def worker_server(names: list[str], announced: int, opened: list[bytes]):
    """A server whose n-th connection answers as worker `names[n]`, of `announced`."""

    async def handle(reader, writer) -> None:
        name = names[len(opened)].encode()
        opened.append(name)
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nx-mlserve-worker: " + name + b"\r\n"
                b"x-mlserve-workers: " + str(announced).encode() + b"\r\n"
                b"content-length: 1\r\n\r\n" + name
            )
            await writer.drain()

    return handle


async def test_requests_one_at_a_time_take_the_workers_in_turn() -> None:
    """Nothing under way anywhere: the worker sent to least recently gets the next request
    (the most recently used connection would have taken them all)."""
    opened: list[bytes] = []
    server, url = await serve(worker_server(["a", "b"], 2, opened))
    async with server:
        pool = UpstreamPool(url, limit=8, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        await asyncio.gather(*(pool.request("GET", "/", {}) for _ in range(2)))
        bodies = [(await pool.request("GET", "/", {})).body for _ in range(6)]
        await pool.close()
    assert opened == [b"a", b"b"]
    assert bodies in ([b"a", b"b"] * 3, [b"b", b"a"] * 3)


async def test_new_connections_are_opened_until_every_announced_worker_is_reached() -> None:
    """The kernel put the first three connections on worker a; the fourth reaches b. From
    then on the pool reuses its connections and both workers get requests."""
    opened: list[bytes] = []
    server, url = await serve(worker_server(["a", "a", "a", "b"], 2, opened))
    async with server:
        pool = UpstreamPool(url, limit=8, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        bodies = [(await pool.request("GET", "/", {})).body for _ in range(8)]
        await pool.close()
    assert opened == [b"a", b"a", b"a", b"b"]
    assert bodies[:4] == [b"a", b"a", b"a", b"b"] and set(bodies[4:]) == {b"a", b"b"}


async def test_a_single_worker_server_is_not_searched_for_others() -> None:
    opened: list[bytes] = []
    server, url = await serve(worker_server(["a"] * 8, 1, opened))
    async with server:
        pool = UpstreamPool(url, limit=8, connect_timeout=1, pool_timeout=1, idle_seconds=30)
        for _ in range(5):
            await pool.request("GET", "/", {})
        await pool.close()
    assert opened == [b"a"]


# A stand-in for model_api that misbehaves on purpose. Every request's path is its marker and
# the real answer's body echoes it: an answer read for the wrong request shows at once.


def own_answer(request: bytes, head: bytes = b"HTTP/1.1 200 OK\r\n") -> bytes:
    """The answer to `request`: its path as the body."""
    path = request.split(b" ", 2)[1]
    return head + b"content-length: %d\r\n\r\n" % len(path) + path


STRAY = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n/stray"


@asynccontextmanager
async def stand_in(respond) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that answers every request of a connection with `await respond(request,
    writer)`; `opened[0]` counts its connections. On the way out it waits for the client's
    connections to end (close the pool inside)."""
    opened = [0]
    handlers: set[asyncio.Task] = set()

    async def handle(reader, writer) -> None:
        handlers.add(asyncio.current_task())
        opened[0] += 1
        try:
            while True:
                await respond(await read_request(reader), writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server, url = await serve(handle)
    async with server:
        yield url, opened
        if handlers:
            await asyncio.wait(handlers, timeout=2)


def new_pool(url: str, limit: int = 1) -> UpstreamPool:
    return UpstreamPool(url, limit=limit, connect_timeout=1, pool_timeout=5, idle_seconds=30)


def markers(count: int, start: int = 0) -> list[bytes]:
    return [b"/m%d" % i for i in range(start, start + count)]


async def ask(pool: UpstreamPool, marker: bytes) -> Answer:
    return await pool.request("POST", marker.decode(), {}, b"x", timeout=5)


async def test_sequential_requests_reuse_one_keep_alive_connection() -> None:
    async def well_behaved(request, writer) -> None:
        writer.write(own_answer(request))

    async with stand_in(well_behaved) as (url, opened):
        pool = new_pool(url, limit=4)
        answers = [await ask(pool, m) for m in markers(100)]
        await pool.close()
    assert [a.body for a in answers] == markers(100)
    assert opened == [1]


async def test_an_extra_answer_in_the_same_write_is_never_read_as_the_next_one() -> None:
    """The stray answer arrives with the real one: the real one is delivered, the connection
    closed, and the next request goes on a fresh one."""

    async def answers_twice(request, writer) -> None:
        writer.write(own_answer(request) + STRAY)

    async with stand_in(answers_twice) as (url, opened):
        pool = new_pool(url)
        answers = [await ask(pool, m) for m in markers(50)]
        await pool.close()
    assert [a.body for a in answers] == markers(50)
    assert opened == [50]


@pytest.mark.parametrize(
    "stray",
    [STRAY, b"garbage", b"\x00", b"\r\n", b"HTTP/1.1 200 OK\r\n"],
    ids=["answer", "garbage", "nul", "crlf", "half-a-head"],
)
async def test_bytes_received_while_idle_retire_the_connection(stray: bytes) -> None:
    """Bytes that arrive while a connection is idle in the pool (an extra answer, garbage,
    even a line break or the start of a head the parser would take) answer no request: the
    connection is closed, and the next request gets its own answer on a fresh one."""
    sent = asyncio.Event()

    async def then_more_later(request, writer) -> None:
        writer.write(own_answer(request))
        await writer.drain()
        await asyncio.sleep(0.002)
        writer.write(stray)
        sent.set()

    async with stand_in(then_more_later) as (url, opened):
        pool = new_pool(url)
        answers = []
        for marker in markers(30):
            answers.append(await ask(pool, marker))
            await sent.wait()
            sent.clear()
            await asyncio.sleep(0.01)  # the stray bytes are read while the connection idles
        await pool.close()
    assert [a.body for a in answers] == markers(30)
    assert opened == [30]


@pytest.mark.parametrize("together", [True, False], ids=["one-write", "apart"])
async def test_interim_answers_are_skipped_for_the_final_one(together: bool) -> None:
    """100 Continue and 103 Early Hints before the answer: the request gets the final answer
    (none of the interim headers), and the connection stays in use."""
    interim = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nlink: </hint>; rel=preload\r\n\r\n",
    ]

    async def with_interim_answers(request, writer) -> None:
        if together:
            writer.write(b"".join(interim) + own_answer(request))
            return
        for part in interim:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(own_answer(request))

    async with stand_in(with_interim_answers) as (url, opened):
        pool = new_pool(url, limit=4)
        answers = [await ask(pool, m) for m in markers(50)]
        await pool.close()
    assert [a.body for a in answers] == markers(50)
    assert {a.status for a in answers} == {200}
    assert not any(b"link" in a.headers for a in answers)
    assert opened == [1]


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\n",
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nkeep-alive: timeout=30\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n",
    ],
    ids=["1.0", "1.0-keep-alive", "1.0-keep-alive-timeout", "1.1-close"],
)
async def test_an_http_1_0_or_closing_answer_closes_the_connection(head: bytes) -> None:
    """The stand-in keeps every connection open and would answer more on it; the client uses
    each for one answer only."""

    async def old_fashioned(request, writer) -> None:
        writer.write(own_answer(request, head))

    async with stand_in(old_fashioned) as (url, opened):
        pool = new_pool(url)
        answers = [await ask(pool, m) for m in markers(30)]
        await pool.close()
    assert [a.body for a in answers] == markers(30)
    assert opened == [30]


@pytest.mark.parametrize(
    "broken",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
        b"HTTP/1.1 999 Odd\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
    ],
    ids=["101-upgrade", "101-then-frames", "status-999", "status-099", "garbage", "bad-length"],
)
async def test_a_broken_answer_fails_its_request_and_closes_the_connection(broken: bytes) -> None:
    """Every fifth request is answered with something that is no final HTTP answer: that
    request fails (it reached the server: no retry), its connection is closed, and every
    other request gets its own answer."""

    async def now_and_then_broken(request, writer) -> None:
        writer.write(broken if b" /broken" in request else own_answer(request))

    async with stand_in(now_and_then_broken) as (url, opened):
        pool = new_pool(url)
        answers, failed = [], 0
        for i, marker in enumerate(markers(41)):
            if i % 5 == 4:
                with pytest.raises(UpstreamDisconnected) as refused:
                    await ask(pool, b"/broken")
                assert refused.value.answered
                failed += 1
            else:
                answers.append(await ask(pool, marker))
        await pool.close()
    assert [a.body for a in answers] == [m for i, m in enumerate(markers(41)) if i % 5 != 4]
    assert failed == 8 and opened == [1 + failed]


async def test_under_concurrency_a_misbehaving_upstream_never_shifts_an_answer() -> None:
    """16 tasks over 4 connections, 480 requests; the stand-in picks at random (seeded) to
    answer normally, with an extra answer after, with interim answers before, as HTTP/1.0,
    or with `Connection: close`."""
    chance = random.Random(27)

    async def any_of_them(request, writer) -> None:
        kind = chance.randrange(5)
        if kind == 1:
            writer.write(own_answer(request) + STRAY)
        elif kind == 2:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + own_answer(request))
        elif kind == 3:
            writer.write(own_answer(request, b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n"))
        elif kind == 4:
            writer.write(own_answer(request, b"HTTP/1.1 200 OK\r\nconnection: close\r\n"))
        else:
            writer.write(own_answer(request))

    async with stand_in(any_of_them) as (url, opened):
        pool = new_pool(url, limit=4)

        async def task(first: int) -> list[tuple[bytes, bytes]]:
            got = []
            for marker in markers(30, first):
                got.append((marker, (await ask(pool, marker)).body))
            return got

        results = await asyncio.gather(*(task(30 * n) for n in range(16)))
        await pool.close()
    pairs = [pair for result in results for pair in result]
    assert len(pairs) == 480 and all(marker == body for marker, body in pairs)
    assert 1 < opened[0] < 480  # connections were both retired and reused
