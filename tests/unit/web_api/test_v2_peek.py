"""Which V2 inference requests the gateway lets share a call: light ones, told from the
body alone."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from harness.bad_inputs import png_claiming
from harness.v2 import image_request, tensor_request
from mlserve_common.wire.v2_wire import HEADER_LENGTH
from web_api.gateway.v2_peek import light_v2_request

MAX_PIXELS = 256 * 256
SMALL = png_claiming(28, 28)
LARGE = png_claiming(300, 300)  # 90,000 pixels


def light(body: bytes, headers: dict[str, str]) -> bool:
    return light_v2_request(body, headers.get(HEADER_LENGTH), MAX_PIXELS)


@pytest.mark.parametrize("binary", [True, False])
def test_one_small_image_is_light_and_a_large_one_is_not(binary: bool) -> None:
    assert light(*image_request(SMALL, binary=binary))
    assert not light(*image_request(LARGE, binary=binary))


def test_several_images_or_a_file_that_is_not_png_or_jpeg_are_not_light() -> None:
    assert not light(*image_request(SMALL, SMALL))
    assert not light(*image_request(b"GIF89a" + bytes(20)))


def test_a_small_tensor_is_light_and_a_large_one_is_not() -> None:
    assert light(*tensor_request(np.zeros((1, 1, 28, 28), np.float32)))
    assert not light(*tensor_request(np.zeros((84, 1, 28, 28), np.float32)))  # 65,856
    assert not light(*tensor_request(np.zeros((0, 1, 28, 28), np.float32)))


def _request(**tensor: object) -> bytes:
    return orjson.dumps({"inputs": [{"name": "image", "datatype": "BYTES", **tensor}]})


def _binary(blob: bytes) -> tuple[bytes, str]:
    """A binary BYTES input of `blob`: too short to hold an element's length."""
    head = _request(shape=[1], parameters={"binary_data_size": len(blob)})
    return head + blob, str(len(head))


@pytest.mark.parametrize(
    ("body", "header_length"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"inputs": "image"}', None),
        (b'{"inputs": [1]}', None),
        (orjson.dumps({"inputs": []}), None),
        (_request(shape=[1], data=["not base64!"], parameters={"content_type": "base64"}), None),
        (_request(shape=[1], data=[SMALL.decode("latin-1")], parameters=[1]), None),
        (_request(shape=["1"], data=["x"]), None),
        (_request(shape=[1], data=[1]), None),
        _binary(b"abc"),
        (image_request(SMALL)[0], "12x"),
        (image_request(SMALL)[0], "99999"),
        (image_request(SMALL)[0], "²"),  # a digit to str.isdigit(), not to int()
        (image_request(SMALL)[0][:-1], image_request(SMALL)[1][HEADER_LENGTH]),  # cut off
    ],
)
def test_anything_not_understood_is_not_light(body: bytes, header_length: str | None) -> None:
    assert not light_v2_request(body, header_length, MAX_PIXELS)
