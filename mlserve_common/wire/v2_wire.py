"""How a V2 (Open Inference Protocol) body says what it carries, in one place for both
services and the tests: JSON alone, or a JSON header followed by raw tensors, whose split the
`Inference-Header-Content-Length` header gives (the protocol's binary data extension)."""

from __future__ import annotations

HEADER_LENGTH = "inference-header-content-length"
HEADER_NAME = "Inference-Header-Content-Length"
"""The same header as people write it, for messages."""
JSON = "application/json"
BINARY = "application/octet-stream"


def content_type(header_length: int | str | None) -> str:
    """A V2 body's media type: JSON, unless raw tensors follow a JSON header of
    `header_length` bytes."""
    return JSON if header_length is None else BINARY


def body_headers(header_length: int | None) -> dict[str, str]:
    """The headers that describe a V2 body whose JSON header is `header_length` bytes long
    (None: the body is JSON alone)."""
    headers = {"content-type": content_type(header_length)}
    if header_length is not None:
        headers[HEADER_LENGTH] = str(header_length)
    return headers
