"""The image formats MLServe reads, in one place: model_api's decoder, both services'
OpenAPI description and the UI's uploader all take them from here."""

from __future__ import annotations

PIL_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
"""What the decoder opens (Pillow's names); anything else is refused with 415."""
NAMES = "PNG, JPEG, BMP, GIF, WebP or TIFF"
"""The same list, the way people write it."""
EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff")
"""File name endings of those formats (the UI's uploader filters on them)."""
MEDIA_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "image/tiff")
"""Their media types, each accepted as a raw request body."""

_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def declared_pixels(data: bytes) -> int | None:
    """Width x height as a PNG's or a baseline/progressive JPEG's header declares it, read
    from the header's bytes alone; None for other formats or a header not understood."""
    if data.startswith(_PNG):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        at = 2
        for _ in range(64):  # segments before the frame header; more is not a plain JPEG
            if at + 4 > len(data) or data[at] != 0xFF:
                return None
            marker = data[at + 1]
            if marker == 0xFF:  # fill byte
                at += 1
                continue
            length = int.from_bytes(data[at + 2 : at + 4], "big")
            if marker in _SOF:
                if at + 9 > len(data):
                    return None
                height = int.from_bytes(data[at + 5 : at + 7], "big")
                width = int.from_bytes(data[at + 7 : at + 9], "big")
                return width * height
            if marker in (0xD9, 0xDA) or length < 2:
                return None
            at += 2 + length
    return None
