"""The bad-day request matrix: each case, what is sent, and the answer it must get.

The table of cases in docs/api.md is generated from this list
(`python -m harness.bad_inputs`), and tests/integration/stack/test_bad_inputs.py proves each row.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
from PIL import Image

from harness.images import drawn_digit_seven, encode

MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One request: `body()` bytes with `content_type`, and the status/code it must get."""

    name: str
    body: Callable[[], bytes]
    status: int
    code: str | None = None  # the error code for a 4xx; None for a 200
    content_type: str = "application/octet-stream"
    method: str = "POST"
    path: str = "/predict"
    only_for: str | None = None  # the one model whose config gives this answer

    @property
    def title(self) -> str:
        return f"{self.name} ({self.only_for})" if self.only_for else self.name

    def send(self, base_url: str, path: str | None = None) -> httpx.Response:
        """Send this case to `base_url` (at `path` instead of its own, if given)."""
        return httpx.request(
            self.method,
            base_url + (path or self.path),
            content=self.body(),
            headers={"content-type": self.content_type},
            timeout=30,
        )


def png_claiming(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's header);
    colour type 0 is grey, 6 is RGBA."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    head = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + head
        + struct.pack(">I", zlib.crc32(head))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def _truncated_png() -> bytes:
    data = encode(drawn_digit_seven())
    return data[: len(data) // 2]


def _sixteen_bit_png() -> bytes:
    pixels = np.asarray(drawn_digit_seven(200, "L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(pixels))


def _palette_with_transparency() -> bytes:
    image = drawn_digit_seven().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    return buffer.getvalue()


def _animated_gif() -> bytes:
    frames = [drawn_digit_seven(100, "L"), Image.new("L", (100, 100), 255)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _one_by_two() -> bytes:
    image = Image.new("RGB", (1, 2), "white")
    image.putpixel((0, 1), (0, 0, 0))
    return encode(image)


def _wide() -> bytes:
    image = Image.new("RGB", (8000, 40), "white")
    image.paste(drawn_digit_seven(40), (3980, 0))
    return encode(image)


BAD = [
    Case("empty body", lambda: b"", 400, "empty_request"),
    Case(
        "bytes that are not an image", lambda: bytes(range(256)) * 8, 415, "unsupported_media_type"
    ),
    Case("truncated PNG", _truncated_png, 400, "invalid_image"),
    Case(
        "PNG signature followed by garbage",
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        400,
        "invalid_image",
    ),
    Case(
        "JPEG cut off inside its header",
        lambda: encode(drawn_digit_seven(), "JPEG")[:300],
        400,
        "invalid_image",
    ),
    Case(
        "decompression bomb (header claims 60000x60000)",
        lambda: png_claiming(60000, 60000),
        413,
        "payload_too_large",
    ),
    Case(
        "decode over the memory budget (RGBA 6000x6000: 144 MB)",
        lambda: png_claiming(6000, 6000, colour_type=6),
        413,
        "payload_too_large",
    ),
    Case(
        "blank image (all one grey)",
        lambda: encode(Image.new("RGB", (64, 64), (128, 128, 128))),
        422,
        "no_content",
        only_for="mnist",
    ),
    Case(
        "body over the 10 MB limit",
        lambda: b"\x89PNG" + b"\0" * (10 * MB + 1),
        413,
        "payload_too_large",
    ),
    Case(
        "SVG drawing",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        415,
        "unsupported_media_type",
        "image/svg+xml",
    ),
    Case(
        "PDF document",
        lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj",
        415,
        "unsupported_media_type",
        "application/pdf",
    ),
    Case(
        "HTML page",
        lambda: b"<!DOCTYPE html><html><body>hi</body></html>",
        415,
        "unsupported_media_type",
        "text/html",
    ),
    Case(
        "malformed multipart",
        lambda: b"--xyz\r\nContent-Disposition: form-data\r\n\r\nno end",
        400,
        "invalid_request",
        "multipart/form-data; boundary=xyz",
    ),
    Case(
        "multipart without boundary",
        lambda: b"whatever",
        400,
        "invalid_request",
        "multipart/form-data",
    ),
    Case(
        "unknown model",
        lambda: encode(drawn_digit_seven()),
        404,
        "model_not_found",
        path="/v1/models/resnet50/predict",
    ),
    Case("wrong method (GET /predict)", lambda: b"", 405, "method_not_allowed", method="GET"),
]

ODD_BUT_VALID = [
    Case("1x2 pixel PNG (one black, one white pixel)", _one_by_two, 200),
    Case("16-bit grayscale PNG", _sixteen_bit_png, 200),
    Case("CMYK JPEG", lambda: encode(drawn_digit_seven().convert("CMYK"), "JPEG"), 200),
    Case("palette PNG with transparency", _palette_with_transparency, 200),
    Case("animated GIF (first frame used)", _animated_gif, 200),
    Case("extremely wide image (8000x40)", _wide, 200),
    Case("BMP", lambda: encode(drawn_digit_seven(), "BMP"), 200),
    Case("grayscale+alpha PNG", lambda: encode(drawn_digit_seven(200, "LA")), 200),
]

CASES = BAD + ODD_BUT_VALID


def markdown_table() -> str:
    """The table in docs/api.md, one row per case."""
    rows = ["| input | answer |", "|---|---|"]
    for case in CASES:
        answer = f"`{case.status}` `{case.code}`" if case.code else f"`{case.status}` prediction"
        rows.append(f"| {case.title} | {answer} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
