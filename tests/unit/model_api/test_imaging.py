from __future__ import annotations

import pytest
from PIL import Image

from harness.bad_inputs import png_claiming
from harness.images import drawn_digit_seven, encode
from model_api.errors import (
    EmptyRequestError,
    InvalidImageError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from model_api.imaging import decode_image

LIMIT = 40_000_000


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_supported_formats_decode(fmt: str) -> None:
    image = decode_image(encode(drawn_digit_seven(), fmt), LIMIT)
    assert image.size == (200, 200)


def test_empty_body() -> None:
    with pytest.raises(EmptyRequestError):
        decode_image(b"", LIMIT)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n1 0 obj", "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b'<?xml version="1.0"?><svg></svg>', "SVG"),
        (b"<!DOCTYPE html><html></html>", "HTML"),
    ],
)
def test_documents_are_415_and_named(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=named):
        decode_image(data, LIMIT)


def test_random_bytes_are_415() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="not an image"):
        decode_image(bytes(range(256)) * 10, LIMIT)


def test_truncated_image_is_400() -> None:
    data = encode(drawn_digit_seven(), "PNG")
    with pytest.raises(InvalidImageError, match="truncated"):
        decode_image(data[: len(data) // 2], LIMIT)


def test_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(PayloadTooLargeError, match="60000x60000"):
        decode_image(png_claiming(60000, 60000), LIMIT)
    with pytest.raises(PayloadTooLargeError):  # past PIL's own bomb guard too
        decode_image(png_claiming(200_000, 200_000), LIMIT)


def test_animated_gif_gives_its_first_frame() -> None:
    first = Image.new("L", (20, 20), 0)
    second = Image.new("L", (20, 20), 255)
    data = encode(first, "GIF", save_all=True, append_images=[second])
    image = decode_image(data, LIMIT)
    assert getattr(image, "n_frames", 1) == 2
    assert image.convert("L").getpixel((5, 5)) == 0
