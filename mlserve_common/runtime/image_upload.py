"""Read the image a client sent: the raw body or a multipart file, within a size limit.

The size limit is enforced while reading (see `mlserve_common.runtime.body`). A small multipart
body in the layout every client sends for one file (curl, requests, httpx, browsers, wrk)
is cut out directly; anything else, and every body over `FAST_PATH_MAX_BYTES`, goes through
the full multipart parser, streamed (python-multipart was a large share of a gateway
worker's time per request: bench/results/profile_gateway_hits.md).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from mlserve_common.runtime.body import Reservation, declared_length, limited_stream
from mlserve_common.runtime.errors import InvalidRequestError

FILE_FIELD = "file"
FAST_PATH_MAX_BYTES = 1024 * 1024
"""Multipart bodies up to this size are read whole and cut directly when they can be (the
full parser also keeps files this small in memory)."""

# The fast path answers only for a layout whose meaning to the full parser is certain, and
# leaves every other body to it. Starlette takes the boundary, the part's name and whether
# the part is a file from python-multipart's `parse_options_header` (which splits on `;`
# outside quotes, lower-cases names, lets the last of a repeated name win, ignores `name*`
# forms and unquotes `"..."` with backslash escapes). The grammars below admit only
# parameters on which any such reading agrees: one `boundary` of RFC 2046 characters, or
# `form-data; name="..."; filename="..."` with no `"`, `\` or `;` inside the quotes.
# Anything else (a repeated or extra parameter, a `;` or an escape in quotes, an
# unterminated quote, `filename*`, another order, another header or a second Content-Type:
# python-multipart refuses a part with more than 8 headers) is unusual, and the full
# parser decides it. tests/unit/test_image_upload_differential.py holds the two to one
# answer at both sizes.
_BCHARS = r"[0-9A-Za-z'()+_,\-./:=?]{1,70}"  # RFC 2046 boundary characters, less the space
_MULTIPART = re.compile(
    rf'multipart/form-data[ \t]*;[ \t]*boundary[ \t]*=[ \t]*(?:({_BCHARS})|"({_BCHARS})")[ \t]*',
    re.ASCII | re.IGNORECASE,
)
_QUOTED = rb'"[^"\\;\r\n]*"'
_FILE_DISPOSITION = re.compile(
    rb"content-disposition:[ \t]*form-data[ \t]*;[ \t]*name[ \t]*=[ \t]*"
    + _QUOTED
    + rb"[ \t]*;[ \t]*filename[ \t]*=[ \t]*"
    + _QUOTED
    + rb"[ \t]*",
    re.IGNORECASE,
)
_PART_TYPE = re.compile(rb"content-type:[^\r\n]*", re.IGNORECASE)
_MAX_HEAD = 4096
"""The most header bytes a part may have here (python-multipart refuses a header line over
4096 + 128 bytes)."""


def single_file(body: bytes, content_type: str) -> bytes | None:
    """The content of a multipart body that is exactly one file part, laid out as
    `--B CRLF headers CRLF CRLF content CRLF --B-- [CRLF]` with a Content-Disposition
    `form-data; name="..."; filename="..."` and at most one Content-Type header, and whose
    Content-Type is `multipart/form-data; boundary=B`; None for any other body (then the
    full parser decides)."""
    found = _MULTIPART.fullmatch(content_type)
    if found is None:
        return None
    boundary = (found[1] or found[2]).encode("ascii")
    opening = b"--" + boundary + b"\r\n"
    closing = b"\r\n--" + boundary + b"--"
    if not body.startswith(opening):
        return None
    head_end = body.find(b"\r\n\r\n", len(opening), len(opening) + _MAX_HEAD + 4)
    end = body.rfind(closing)
    if head_end < 0 or end < head_end + 4 or body[end + len(closing) :] not in (b"", b"\r\n"):
        return None
    lines = body[len(opening) : head_end].split(b"\r\n")
    if len(lines) == 2 and _PART_TYPE.fullmatch(lines[0]):
        del lines[0]
    elif len(lines) == 2 and _PART_TYPE.fullmatch(lines[1]):
        del lines[1]
    if len(lines) != 1 or not _FILE_DISPOSITION.fullmatch(lines[0]):
        return None
    start = head_end + 4
    if body.find(b"\r\n--" + boundary, start, end) != -1:
        return None  # another part, or a line the parser reads as a delimiter
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
    declared = declared_length(request, max_bytes)  # 400 or 413 here as in the stream
    if declared is not None and declared <= FAST_PATH_MAX_BYTES:
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
