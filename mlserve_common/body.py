"""Read a request body within a size limit, enforced while reading (never buffered whole)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.requests import ClientDisconnect, Request

from mlserve_common.errors import InvalidRequestError, PayloadTooLargeError


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body exceeds the limit of {max_bytes:,} bytes")


async def limited_stream(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks; 413 as soon as more than `max_bytes` are declared or received."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            yield chunk
    except ClientDisconnect as exc:
        raise InvalidRequestError("the client disconnected before the body was complete") from exc


async def read_limited_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, at most `max_bytes` long."""
    return b"".join([chunk async for chunk in limited_stream(request, max_bytes)])
