"""Read the image a client sent: the raw body or a multipart file, within a size limit.

The size limit is enforced while reading (see `mlserve_common.body`). A small multipart
body in the layout every client sends for one file (curl, requests, httpx, browsers, wrk)
is cut out directly; anything else, and every body over `FAST_PATH_MAX_BYTES`, goes through
the full multipart parser, streamed (python-multipart took a tenth of a gateway worker's
time per request: bench/results/profile_gateway_hits.md).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from mlserve_common.body import Reservation, limited_stream
from mlserve_common.errors import InvalidRequestError

FILE_FIELD = "file"
FAST_PATH_MAX_BYTES = 1024 * 1024
"""Multipart bodies up to this size are read whole and cut directly when they can be (the
full parser also keeps files this small in memory)."""
_DISPOSITION = re.compile(rb"(?i)content-disposition:[ \t]*form-data[ \t]*;[^\r\n]*")
_NAME = re.compile(rb';[ \t]*name="[^"]*"')
_FILENAME = re.compile(rb';[ \t]*filename="[^"]*"')
_CONTENT_TYPE = re.compile(rb"(?i)content-type:[^\r\n]*")


def _boundary(content_type: str) -> bytes | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary":
            value = value.strip().strip('"')
            return value.encode("latin-1") if 0 < len(value) <= 70 else None
    return None


def single_file(body: bytes, content_type: str) -> bytes | None:
    """The content of a multipart body that is exactly one file part, laid out as
    `--B CRLF headers CRLF CRLF content CRLF --B-- [CRLF]` with only Content-Disposition
    (form-data, with a filename) and Content-Type headers; None for any other body."""
    boundary = _boundary(content_type)
    if boundary is None:
        return None
    opening = b"--" + boundary + b"\r\n"
    closing = b"\r\n--" + boundary + b"--"
    if not body.startswith(opening):
        return None
    head_end = body.find(b"\r\n\r\n", len(opening))
    end = body.rfind(closing)
    if head_end < 0 or end < head_end + 4 or body[end + len(closing) :] not in (b"", b"\r\n"):
        return None
    lines = body[len(opening) : head_end].split(b"\r\n")
    others = [line for line in lines if not _CONTENT_TYPE.fullmatch(line)]
    if len(others) != 1 or not _DISPOSITION.fullmatch(others[0]):
        return None
    disposition = others[0]
    if not (_NAME.search(disposition) and _FILENAME.search(disposition)):
        return None
    if b"filename*" in disposition or len(_FILENAME.findall(disposition)) != 1:
        return None
    start = head_end + 4
    if body.find(b"\r\n--" + boundary, start, end) != -1:
        return None  # another part
    return body[start:end]


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def read_image_bytes(
    request: Request, max_bytes: int, reservation: Reservation | None = None
) -> bytes:
    """The image's bytes, exactly as the client sent them."""
    stream = limited_stream(request, max_bytes, reservation)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return b"".join([chunk async for chunk in stream])
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= FAST_PATH_MAX_BYTES:
        body = b"".join([chunk async for chunk in stream])
        found = single_file(body, content_type)
        if found is not None:
            return found
        stream = _replay(body)
    try:
        form = await MultiPartParser(request.headers, stream, max_files=4, max_fields=16).parse()
    except MultiPartException as exc:
        raise InvalidRequestError(f"malformed multipart body: {exc.message}") from exc
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        chosen = form.get(FILE_FIELD)
        upload = chosen if isinstance(chosen, UploadFile) else (files[0] if files else None)
        if upload is None:
            raise InvalidRequestError(
                f"the multipart body has no file; send the image in field '{FILE_FIELD}'"
            )
        return await upload.read()
    finally:
        await form.close()
