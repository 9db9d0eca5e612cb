"""One write (one system call, one TCP segment) per small answer instead of two.

uvicorn writes an answer's status line and headers as soon as the app sends
`http.response.start`, and its body when the app sends `http.response.body`: two system
calls, and on a TCP_NODELAY socket two segments, which wake the reader (the gateway's
upstream client, a load generator, a browser) twice. Starlette's `Response` sends the two
messages back to back, so the head can wait for its body and go out with it.

`CoalescingTransport` wraps a connection's transport and holds a write that is a complete
response head; the next write (the body, or the first chunk) goes out joined to it. So
that nothing can stay held, a head whose body does not come in the same turn of the event
loop (a streamed answer's slow first chunk, `100 Continue`) is written at the end of that
turn, and `close()` writes what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport that joins a held response head to the write after it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif isinstance(data, bytes) and data.startswith(_HEAD_START) and data.endswith(_HEAD_END):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write what is held, if anything (and the connection is still open)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)
