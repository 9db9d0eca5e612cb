"""The services' HTTP protocol, with heads held for their bodies (`coalesced_writes`),
under a real uvicorn server and a raw socket: small answers arrive whole and in order on
one keep-alive connection, and a head whose body is not ready is not held back for it
(a streamed answer, `100 Continue`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from harness.hostile import RawAnswer, parse_answer
from harness.redis_server import free_port
from mlserve_common.runtime.http_protocol import GuardedHttpProtocol

WAIT_SECONDS = 10  # a head held for its body would leave the client waiting this long


class App:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/small/{n}", self.small),
                Route("/echo", self.echo, methods=["POST"]),
                Route("/stream", self.stream),
            ]
        )

    async def small(self, request: Request) -> JSONResponse:
        return JSONResponse({"n": int(request.path_params["n"])})

    async def echo(self, request: Request) -> JSONResponse:
        return JSONResponse({"got": len(await request.body())})

    async def stream(self, request: Request) -> StreamingResponse:
        self.loop, self.release = asyncio.get_running_loop(), asyncio.Event()

        async def chunks():
            await self.release.wait()  # the client sets it once it has read the head
            yield b"late body"

        return StreamingResponse(chunks(), media_type="text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, App]]:
    app, port = App(), free_port()
    config = uvicorn.Config(
        app.app, host="127.0.0.1", port=port, http=GuardedHttpProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield port, app
    server.should_exit = True
    thread.join(timeout=10)


def connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    connection.settimeout(WAIT_SECONDS)
    return connection


class Reader:
    """Reads answers off one connection, keeping what arrived beyond each."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection, self.buffer = connection, b""

    def until(self, marker: bytes) -> bytes:
        """Everything up to and including `marker` (times out if it never comes)."""
        while marker not in self.buffer:
            data = self.connection.recv(65536)
            assert data, f"connection closed; got {self.buffer!r}"
            self.buffer += data
        upto = self.buffer.index(marker) + len(marker)
        taken, self.buffer = self.buffer[:upto], self.buffer[upto:]
        return taken

    def answer(self) -> RawAnswer:
        """One Content-Length answer, and not a byte of the next."""
        head = self.until(b"\r\n\r\n")
        length = int(parse_answer(head).headers["content-length"])
        while len(self.buffer) < length:
            data = self.connection.recv(65536)
            assert data, "connection closed mid-body"
            self.buffer += data
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return parse_answer(head + body)


def test_small_answers_arrive_whole_and_in_order_on_one_connection(server) -> None:
    port, _ = server
    with connect(port) as connection:
        reader = Reader(connection)
        for n in range(50):
            connection.sendall(b"GET /small/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
            answer = reader.answer()
            assert answer.status == 200
            assert answer.body == b'{"n":%d}' % n
            assert reader.buffer == b""


def test_pipelined_requests_get_their_answers_in_order(server) -> None:
    port, _ = server
    requests = b"".join(b"GET /small/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in range(5))
    with connect(port) as connection:
        connection.sendall(requests)
        reader = Reader(connection)
        bodies = [reader.answer().body for _ in range(5)]
    assert bodies == [b'{"n":%d}' % n for n in range(5)]


def test_a_streamed_answer_sends_its_head_before_its_body_is_ready(server) -> None:
    port, app = server
    with connect(port) as connection:
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(connection)
        head = reader.until(b"\r\n\r\n")  # times out if the head waited for the body
        assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in head
        assert reader.buffer == b""
        app.loop.call_soon_threadsafe(app.release.set)
        body = reader.until(b"0\r\n\r\n")
    assert b"late body" in body


def test_expect_100_continue_is_answered_before_the_body_is_sent(server) -> None:
    port, _ = server
    with connect(port) as connection:
        connection.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(connection)
        interim = reader.until(b"\r\n\r\n")  # times out if `100 Continue` was held
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(b"hello")
        answer = reader.answer()
    assert answer.status == 200 and answer.body == b'{"got":5}'
