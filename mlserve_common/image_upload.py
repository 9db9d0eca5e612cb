"""Read the image a client sent: the raw body or a multipart file, within a size limit.

The size limit is enforced while reading (see `mlserve_common.body`).
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from mlserve_common.body import Reservation, limited_stream
from mlserve_common.errors import InvalidRequestError

FILE_FIELD = "file"


async def read_image_bytes(
    request: Request, max_bytes: int, reservation: Reservation | None = None
) -> bytes:
    """The image's bytes, exactly as the client sent them."""
    stream = limited_stream(request, max_bytes, reservation)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return b"".join([chunk async for chunk in stream])
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
