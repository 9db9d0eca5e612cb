"""uvicorn's httptools protocol with the limits a public port needs (`HttpLimits`).

uvicorn's own protocol accepts a head of any size (a huge header stalls the worker for
seconds, since httptools grows a header by concatenation), any number of headers, and
clients that send a byte a second forever; a connection that never sends a byte is never
closed. Its parser errors are plain text. Here:

- the head (request line and headers) is fed to the parser only up to `max_head_bytes`:
  past it the answer is 431 at once, without parsing the rest;
- more than `max_headers` fields: 431; a request target over `max_request_line_bytes`: 414;
- a head not complete `header_timeout_seconds` after its first byte (or after the
  connection opened), or a body not complete `body_timeout_seconds` after its head: 408;
- every refusal, parser errors included, is the services' JSON error envelope with an
  `X-Request-ID`, and is logged with its cause;
- a connection lost before its answer cancels the request's work where the request asked
  for it (`mlserve_common.runtime.disconnect`);
- a small answer's head and body go out in one write (`mlserve_common.runtime.coalesced_writes`);
- a graceful stop (SIGTERM, or the old worker of a rolling restart) loses no request: each
  connection closes only after an answer that says `Connection: close` (see `shutdown`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlserve_common.runtime.coalesced_writes import CoalescingTransport
from mlserve_common.runtime.disconnect import ON_DISCONNECT
from mlserve_common.runtime.errors import log_throttled
from mlserve_common.runtime.http_limits import HttpLimits
from mlserve_common.runtime.observability import REQUEST_ID_HEADER, new_request_id

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


class _Refused(Exception):
    """Raised from a parser callback to stop parsing this request."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: HttpLimits | None = None  # read once per process, from what serve() exported

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if GuardedHttpProtocol.limits is None:
            GuardedHttpProtocol.limits = HttpLimits.exported()
        self._limits: HttpLimits = GuardedHttpProtocol.limits
        self._head_bytes: int | None = 0  # bytes of the head read so far; None: in the body
        self._heads_done = 0
        self._deadline: tuple[float, float, str] | None = None  # (when, seconds, what)
        self._refused = False
        self._draining = False  # the worker is stopping: this connection's last request
        self._idle_drain = False  # the deadline armed is the drain's, not a head's

    # connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm(self._limits.header_timeout_seconds, "its request head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._client_gone()
        super().connection_lost(exc)

    def _client_gone(self) -> None:
        """The answer will reach nobody: cancel the work the request asked to be cancelled
        (see `mlserve_common.runtime.disconnect`)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            on_disconnect = cycle.scope.get(ON_DISCONNECT)
            if on_disconnect is not None:
                on_disconnect()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        head_bytes = self._head_bytes
        if head_bytes is not None:
            if head_bytes == 0 and (self._deadline is None or self._idle_drain):
                self._idle_drain = False
                self._arm(self._limits.header_timeout_seconds, "its request head")
            room = self._limits.max_head_bytes - head_bytes
            if len(data) > room:
                # Parse only what fits: if the head ends within it, the rest is body.
                self._head_bytes = head_bytes + room
                heads_done = self._heads_done
                if not self._feed(data[:room]):
                    return
                if self._heads_done == heads_done:
                    self._refuse(
                        431,
                        "headers_too_large",
                        f"the request's headers exceed {self._limits.max_head_bytes:,} bytes",
                    )
                    return
                data = data[room:]
            else:
                self._head_bytes = head_bytes + len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Feed the parser as uvicorn does; False when the request was refused."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            refusal = exc.__context__
            if isinstance(refusal, _Refused):
                self._refuse(refusal.status, refusal.code, refusal.message)
            else:
                self._refuse(400, "invalid_http", f"the request is not valid HTTP/1.1 ({exc})")
            return False
        return True

    # parser callbacks (the limits are checked once per head, not once per header: the
    # head's size bounds how many headers and how long a target can arrive before that)
    def on_headers_complete(self) -> None:
        limits = self._limits
        if len(self.url) > limits.max_request_line_bytes:
            raise _Refused(
                414,
                "uri_too_long",
                f"the request target exceeds {limits.max_request_line_bytes:,} bytes",
            )
        if len(self.headers) > limits.max_headers:
            raise _Refused(
                431,
                "too_many_headers",
                f"the request has more than {limits.max_headers} header fields",
            )
        self._head_bytes = None
        self._heads_done += 1
        self._arm(limits.body_timeout_seconds, "its request body")
        HttpToolsProtocol.on_headers_complete(self)
        if self._draining:  # answered, then closed: the worker is stopping
            self.cycle.keep_alive = False

    # a graceful stop
    def shutdown(self) -> None:
        """Called by uvicorn when the worker stops gracefully. uvicorn's own closes a
        keep-alive connection that is idle at once, and a request its client sent meanwhile
        is lost (a reset, or a connection closed unanswered: 149 of 60,000 requests when the
        gateway was restarted under load). Here a connection closes only after an answer
        that says `Connection: close`: the request under way, or the next one (a head
        already arriving, or one sent within `DRAIN_IDLE_SECONDS`). A connection that sends
        none by then is closed idle, as a keep-alive timeout would close it."""
        self._draining = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
        elif self._head_bytes == 0:  # between requests: wait a moment for one more
            self._arm(DRAIN_IDLE_SECONDS, "another request")
            self._idle_drain = True

    def on_message_complete(self) -> None:
        self._deadline = None
        self._head_bytes = 0  # the next bytes start the next request's head
        HttpToolsProtocol.on_message_complete(self)

    # refusals
    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with the JSON error envelope where an answer can still be sent, close."""
        self._refused = True
        self._disarm()
        request_id = new_request_id()
        log_throttled(
            logging.WARNING,
            code,
            "%s -> %d %s: %s [%s]",
            self._peer(),
            status,
            code,
            message,
            request_id,
            extra={"request_id": request_id, "status": status},
        )
        cycle = self.cycle
        if cycle is None:
            can_answer = True
        elif self._head_bytes is not None:  # in a new request's head: the last one is over
            can_answer = cycle.response_complete
        else:  # in this request's body: its app may have answered already
            can_answer = not cycle.response_started
            if not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() sees the client gone
                cycle.message_event.set()
                self._client_gone()
        if can_answer:
            body = json.dumps({"error": message, "code": code, "request_id": request_id})
            head = (
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n%s: %s\r\nconnection: close\r\n\r\n"
                % (
                    status,
                    _REASONS[status],
                    len(body),
                    REQUEST_ID_HEADER.encode(),
                    request_id.encode(),
                )
            )
            self.transport.write(head + body.encode())
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"

    # deadlines: a timestamp per connection, checked by one sweep per process and
    # `SWEEP_SECONDS` (a timer per request cost as much as the rest of a cache hit's parsing)
    def _arm(self, seconds: float, what: str) -> None:
        self._deadline = (self.loop.time() + seconds, seconds, what)
        if self.loop not in _sweeping:
            _sweeping.add(self.loop)
            self.loop.call_later(SWEEP_SECONDS, _sweep, self.loop, self.connections)

    def _disarm(self) -> None:
        self._deadline = None

    def _too_slow(self, seconds: float, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answered = self.cycle is not None and self.cycle.response_started
        if self._head_bytes == 0 or (self._head_bytes is None and answered):
            # Opened and never used, or answered already (say 413 before the body came):
            # nothing is owed, the connection just goes.
            self.transport.close()
            return
        self._refuse(408, "request_timeout", f"the client did not send {what} within {seconds:g} s")


SWEEP_SECONDS = 0.5
DRAIN_IDLE_SECONDS = 2.0
"""On a graceful stop, how long an idle keep-alive connection stays open for one more
request (answered with `Connection: close`) before it is closed."""
_sweeping: set[asyncio.AbstractEventLoop] = set()


def _sweep(loop: asyncio.AbstractEventLoop, connections: set) -> None:
    """Time out every connection past its deadline, then look again in `SWEEP_SECONDS`."""
    now = loop.time()
    for connection in list(connections):
        deadline = getattr(connection, "_deadline", None)
        if deadline is not None and now >= deadline[0]:
            connection._too_slow(deadline[1], deadline[2])
    loop.call_later(SWEEP_SECONDS, _sweep, loop, connections)
