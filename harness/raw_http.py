"""Tiny asyncio HTTP/1.1 servers for tests of hand-written clients: each answers what the
test's handler writes, byte for byte, so a test can misbehave the way a real server might;
and a Starlette request whose body arrives in given chunks, for tests of body readers."""

from __future__ import annotations

import asyncio

from starlette.requests import Request


async def serve(handler) -> tuple[asyncio.Server, str]:
    """An asyncio server on a free loopback port running `handler(reader, writer)` per
    connection, and its base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and its Content-Length body, as bytes."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


def upload_request(chunks: list[bytes], content_type: str) -> Request:
    """A `POST /predict` whose body arrives in `chunks` (then the client is gone)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(sum(map(len, chunks))).encode()),
        ],
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return Request(scope, receive)
