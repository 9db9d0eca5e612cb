"""Read a request body within a size limit, enforced while reading (never buffered whole),
and within the process's budget for bodies held at once.

Each upload is held once (the chunks are joined when the last one arrives), and every
body held by a worker counts against `UploadBudget`: a burst of large uploads gets 503 with
Retry-After past it instead of taking the machine's memory.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.requests import ClientDisconnect, Request

from mlserve_common.runtime.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UploadsBusyError,
)
from mlserve_common.wire.numbers import NumberFormatError, NumberTooLargeError, parse_header_count


def too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body exceeds the limit of {max_bytes:,} bytes")


class UploadBudget:
    """Bytes of request bodies this process holds at once, at most `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reservation(self) -> Reservation:
        """`with budget.reservation() as held:` bytes taken within the block are given back
        when it ends."""
        return Reservation(self)


class Reservation:
    __slots__ = ("budget", "bytes")

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.budget.held -= self.bytes
        self.bytes = 0

    def take(self, count: int) -> None:
        budget = self.budget
        if budget.held + count > budget.limit:
            raise UploadsBusyError(
                f"the service is receiving too many uploads at once ({budget.held / 2**20:,.1f} "
                f"MiB held, limit {budget.limit / 2**20:,.0f} MiB per worker); retry in a moment"
            )
        budget.held += count
        self.bytes += count


def declared_length(request: Request, max_bytes: int | None = None) -> int | None:
    """The body's size as its Content-Length declares it; None where it declares none
    (a chunked body). 400 for one that is not ASCII digits (the HTTP parser refuses most
    before this); 413 for one over `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    try:
        return parse_header_count(declared, "Content-Length", max_bytes, unit="bytes")
    except NumberFormatError as exc:
        if isinstance(exc, NumberTooLargeError) and max_bytes is not None:
            raise too_large(max_bytes) from None
        raise InvalidRequestError(exc.message) from None


async def limited_stream(
    request: Request, max_bytes: int, reservation: Reservation | None = None
) -> AsyncGenerator[bytes, None]:
    """The body's chunks; 413 as soon as more than `max_bytes` are declared or received,
    503 when the `reservation`'s budget cannot hold them; 400 for a Content-Length that is
    not a number (`declared_length`)."""
    expected = declared_length(request, max_bytes)
    if reservation is not None and expected is not None:
        reservation.take(expected)  # refused before a byte is read
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            if reservation is not None and (expected is None or received > expected):
                reservation.take(len(chunk))
            yield chunk
    except ClientDisconnect as exc:
        raise InvalidRequestError("the client disconnected before the body was complete") from exc


async def read_limited_body(
    request: Request, max_bytes: int, reservation: Reservation | None = None
) -> bytes:
    """The whole body, at most `max_bytes` long."""
    return b"".join([chunk async for chunk in limited_stream(request, max_bytes, reservation)])
