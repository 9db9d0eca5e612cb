"""Whether an Open Inference Protocol inference request is light work for model_api, told
from its body without decoding an image: then it may share a call with others
(coalescer.py), as a small image posted to `/predict` does.

Light means one input, and that input is either one PNG or JPEG file whose header declares
at most `max_pixels` (BYTES, in binary or as base64 JSON), or a numeric tensor of at most
`max_pixels` elements. Anything else, including a body this does not understand, is not
light: it goes to model_api alone, exactly as sent, and gets the protocol's own answer.
"""

from __future__ import annotations

import base64
import struct

import orjson

from mlserve_common.wire import v2_wire
from mlserve_common.wire.image_formats import declared_pixels
from mlserve_common.wire.numbers import bounded_product, parse_header_count


def light_v2_request(body: bytes, header_length: int | str | None, max_pixels: int) -> bool:
    """`header_length`: the JSON's length before binary data, as a number or as the
    `Inference-Header-Content-Length` header wrote it (ASCII digits, else not light)."""
    try:
        if header_length is None:
            head, binary = body, b""
        else:
            if type(header_length) is not int:
                header_length = parse_header_count(header_length, v2_wire.HEADER_NAME)
            if not 0 <= header_length <= len(body):
                return False
            head, binary = body[:header_length], body[header_length:]
        request = orjson.loads(head)
        inputs = request["inputs"]
        if not isinstance(inputs, list) or len(inputs) != 1:
            return False
        (tensor,) = inputs
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            return False
        count = bounded_product(shape, max_pixels)  # no giant product of huge dimensions
        if count is None:
            return False
        if tensor["datatype"] != "BYTES":
            return 0 < count <= max_pixels
        image = _one_file(tensor, binary) if count == 1 else None
    except (AttributeError, KeyError, TypeError, ValueError):  # JSON, base64, number errors
        return False
    pixels = declared_pixels(image) if image else None
    return pixels is not None and 0 < pixels <= max_pixels


def _one_file(tensor: dict, binary: bytes) -> bytes | None:
    """The one element of a BYTES input; None where it is not plainly there."""
    parameters = tensor.get("parameters") or {}
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size != len(binary) or size < 4:
            return None
        (length,) = struct.unpack_from("<I", binary)
        return binary[4:] if length == size - 4 else None
    data = tensor["data"]
    while isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, str):
        return None
    if parameters.get("content_type") == "base64":
        return base64.b64decode(data, validate=True)
    return data.encode("utf-8")
