"""The wire format of several images (or Open Inference Protocol requests) in one call
from the gateway to model_api, and of their answers.

Under load, the gateway sends the unique images that reach it in the same turn of its
event loop to model_api together (`web_api.gateway.coalescer`): one HTTP exchange instead
of one per image, so the cost of a request through two HTTP servers is shared. Each image
keeps its own request id, its own answer, its own status: one bad image gets its own 400
and its batch-mates their predictions. Small V2 inference requests go together the same
way, each item a whole V2 request body.

Both bodies are a one-line JSON header, a newline, then the items' bytes back to back
(with tracing on, the images' header also gives each item's W3C `traceparents`):

    images:   {"sizes": [812, 790], "ids": ["3f..", "40.."]}\\n<812 bytes><790 bytes>
    answers:  {"answers": [[200, 231, null], [400, 96, null]]}\\n<231 bytes><96 bytes>

An answer is `[status, size, retry_after]`: `retry_after` is the Retry-After header an
error carries (503 busy), or null. V2 requests also carry their
`Inference-Header-Content-Length` (`"header_lengths": [143, null]`), and a V2 answer with
binary outputs adds its own as a fourth element (`[200, 92, null, 84]`); an answer without
one is JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from mlserve_common.runtime.observability import is_safe_request_id

IMAGES_TYPE = "application/vnd.mlserve.images"
ANSWERS_TYPE = "application/vnd.mlserve.answers"
MAX_ITEMS = 64
"""The most images one call may carry."""
_MAX_HEADER_BYTES = 64 + MAX_ITEMS * 192
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


class BatchFormatError(ValueError):
    """A body that is not in this format (the message says how)."""


@dataclass(frozen=True)
class Item:
    request_id: str
    body: bytes
    """What the item carries: an image file, or a whole V2 request body."""
    header_length: int | None = None
    """A V2 body's Inference-Header-Content-Length (the JSON's length before binary data)."""
    traceparent: str | None = None
    """The W3C trace context its request's trace continues in (with tracing on)."""


@dataclass(frozen=True)
class ItemAnswer:
    status: int
    body: bytes
    retry_after: str | None = None
    header_length: int | None = None
    """A V2 answer's Inference-Header-Content-Length: binary outputs follow its JSON."""


def _split(body: bytes, what: str) -> tuple[dict, memoryview]:
    end = body.find(b"\n", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise BatchFormatError(f"the {what} body has no header line")
    try:
        header = orjson.loads(body[:end])
    except orjson.JSONDecodeError as exc:
        raise BatchFormatError(f"the {what} body's header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise BatchFormatError(f"the {what} body's header is not a JSON object")
    return header, memoryview(body)[end + 1 :]


def _cut(payload: memoryview, sizes: list[int], what: str) -> list[bytes]:
    if sum(sizes) != len(payload):
        raise BatchFormatError(
            f"the {what} body holds {len(payload)} bytes after its header, "
            f"but its sizes add up to {sum(sizes)}"
        )
    parts, start = [], 0
    for size in sizes:
        parts.append(bytes(payload[start : start + size]))
        start += size
    return parts


def _sizes(value: object, what: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not 0 < len(value) <= MAX_ITEMS
        or not all(type(size) is int and size >= 0 for size in value)
    ):
        raise BatchFormatError(
            f"the {what} body's sizes must be a list of 1 to {MAX_ITEMS} byte counts"
        )
    return value


def encode_images(items: list[Item]) -> bytes:
    header: dict = {"sizes": [len(i.body) for i in items], "ids": [i.request_id for i in items]}
    if any(item.header_length is not None for item in items):
        header["header_lengths"] = [item.header_length for item in items]
    if any(item.traceparent is not None for item in items):
        header["traceparents"] = [item.traceparent for item in items]
    return b"".join([orjson.dumps(header), b"\n", *(item.body for item in items)])


def decode_images(body: bytes) -> list[Item]:
    """The images of a body `encode_images` wrote; `BatchFormatError` for anything else.
    A request id that is not a safe token is replaced by an empty one (the caller makes
    its own)."""
    header, payload = _split(body, "images")
    sizes = _sizes(header.get("sizes"), "images")
    ids = header.get("ids")
    if not isinstance(ids, list) or len(ids) != len(sizes):
        raise BatchFormatError("the images body needs one id per image")
    lengths = header.get("header_lengths", [None] * len(sizes))
    if (
        not isinstance(lengths, list)
        or len(lengths) != len(sizes)
        or not all(_header_length(n, size) for n, size in zip(lengths, sizes, strict=True))
    ):
        raise BatchFormatError(
            "the images body's header_lengths must give each item null or a length within it"
        )
    traces = header.get("traceparents", [None] * len(sizes))
    if not isinstance(traces, list) or len(traces) != len(sizes):
        raise BatchFormatError("the images body's traceparents must give each item one or null")
    images = _cut(payload, sizes, "images")
    safe = [i if is_safe_request_id(i) else "" for i in ids]
    traces = [t if isinstance(t, str) and _TRACEPARENT.fullmatch(t) else None for t in traces]
    return [Item(*item) for item in zip(safe, images, lengths, traces, strict=True)]


def _header_length(value: object, size: int) -> bool:
    """Null, or a whole number of bytes within an item of `size` bytes (JSON numbers only:
    a float, a bool or a numeric string is not one)."""
    return value is None or (type(value) is int and 0 <= value <= size)


def _is_header_value(value: object) -> bool:
    """Text an HTTP answer can carry as a header value (printable ASCII, bounded)."""
    return isinstance(value, str) and len(value) <= 64 and value.isascii() and value.isprintable()


def encode_answers(answers: list[ItemAnswer]) -> bytes:
    # The fourth element only where there is one: a gateway of the previous release reads
    # rows of three (and never sends V2 requests, whose answers alone have one).
    header = {"answers": [_row(answer) for answer in answers]}
    return b"".join([orjson.dumps(header), b"\n", *(answer.body for answer in answers)])


def _row(answer: ItemAnswer) -> list:
    row = [answer.status, len(answer.body), answer.retry_after]
    return row if answer.header_length is None else [*row, answer.header_length]


def decode_answers(body: bytes, count: int) -> list[ItemAnswer]:
    """The `count` answers of a body `encode_answers` wrote; `BatchFormatError` else."""
    header, payload = _split(body, "answers")
    rows = header.get("answers")
    if not isinstance(rows, list) or len(rows) != count:
        raise BatchFormatError(f"the answers body must hold {count} answers")
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) not in (3, 4)
            or type(row[0]) is not int
            or not 200 <= row[0] <= 599
            or not (row[2] is None or _is_header_value(row[2]))
            or (len(row) == 4 and not (type(row[3]) is int and row[3] >= 0))
        ):
            raise BatchFormatError(
                "an answer must be [status, size, retry_after] or "
                "[status, size, retry_after, header_length], with a final HTTP status and a "
                "retry_after that can be a header"
            )
    bodies = _cut(payload, _sizes([row[1] for row in rows], "answers"), "answers")
    return [
        ItemAnswer(row[0], b, row[2], row[3] if len(row) == 4 else None)
        for row, b in zip(rows, bodies, strict=True)
    ]
