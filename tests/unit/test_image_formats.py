"""The pixel count an image's header declares, read without decoding it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from harness.bad_inputs import png_claiming
from mlserve_common.wire.image_formats import declared_pixels


def _encoded(size: tuple[int, int], fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("size", [(28, 28), (300, 17), (3000, 3000)])
@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": Image.Exif(), "icc_profile": b"\0" * 3000}),
    ],
)
def test_png_and_jpeg_headers_give_width_times_height(
    size: tuple[int, int], fmt: str, options: dict
) -> None:
    assert declared_pixels(_encoded(size, fmt, **options)) == size[0] * size[1]


def test_a_header_is_believed_as_it_is_even_when_the_rest_is_missing() -> None:
    assert declared_pixels(png_claiming(50_000, 50_000)) == 2_500_000_000


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",  # cut in the signature's chunk
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDX" + b"\0" * 8,  # not IHDR first
        b"\xff\xd8\xff\xe0\0\x10JFIF",  # cut before the frame header
        b"\xff\xd8\xff\xda\0\x08" + b"\0" * 8,  # scan before any frame header
        _encoded((28, 28), "GIF"),
        _encoded((28, 28), "BMP"),
        b"plain text",
    ],
)
def test_anything_else_declares_nothing(data: bytes) -> None:
    assert declared_pixels(data) is None
