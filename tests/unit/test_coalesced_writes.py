"""A response head waits for its body and the two go out in one write; nothing is held
past the event loop's turn or a close."""

from __future__ import annotations

import asyncio

from mlserve_common.runtime.coalesced_writes import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n"


class RecordingTransport:
    """What reaches the socket: one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


def on_loop(scenario):
    async def main():
        socket = RecordingTransport()
        await scenario(CoalescingTransport(socket, asyncio.get_running_loop()), socket)
        return socket

    return asyncio.run(main())


def test_head_and_body_go_out_in_one_write() -> None:
    async def scenario(transport, socket):
        transport.write(HEAD)
        assert socket.writes == []
        transport.write(b"{}")
        assert socket.writes == [HEAD + b"{}"]
        await asyncio.sleep(0)  # the end-of-turn flush finds nothing left to write
        assert socket.writes == [HEAD + b"{}"]

    on_loop(scenario)


def test_keep_alive_answers_each_coalesce() -> None:
    async def scenario(transport, socket):
        for body in (b"{}", b"[]", b"42"):
            transport.write(HEAD)
            transport.write(body)
            await asyncio.sleep(0)
        assert socket.writes == [HEAD + b"{}", HEAD + b"[]", HEAD + b"42"]

    on_loop(scenario)


def test_a_head_whose_body_is_late_goes_out_at_the_end_of_the_turn() -> None:
    """A streamed answer whose first chunk takes a while: its head is not held for it."""

    async def scenario(transport, socket):
        transport.write(HEAD)
        await asyncio.sleep(0)
        assert socket.writes == [HEAD]
        transport.write(b"{}")
        assert socket.writes == [HEAD, b"{}"]

    on_loop(scenario)


def test_other_writes_pass_straight_through() -> None:
    async def scenario(transport, socket):
        transport.write(b"5\r\nhello\r\n")  # a chunk
        transport.write(memoryview(b"body"))
        transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}")  # whole
        assert socket.writes == [
            b"5\r\nhello\r\n",
            b"body",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
        ]

    on_loop(scenario)


def test_close_writes_a_held_head_first() -> None:
    async def scenario(transport, socket):
        transport.write(HEAD)
        transport.close()
        assert socket.writes == [HEAD]
        assert socket.closed
        await asyncio.sleep(0)  # the end-of-turn flush does not write after the close
        assert socket.writes == [HEAD]

    on_loop(scenario)


def test_a_head_held_when_the_connection_is_lost_is_dropped_quietly() -> None:
    async def scenario(transport, socket):
        transport.write(HEAD)
        socket.close()  # the peer went away under it
        await asyncio.sleep(0)
        assert socket.writes == []

    on_loop(scenario)


def test_everything_else_is_the_transports() -> None:
    async def scenario(transport, socket):
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1234)
        assert transport.is_closing() is False

    on_loop(scenario)
