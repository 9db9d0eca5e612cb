"""Decode the bytes a client sent into one image, refusing anything unsafe or unsupported."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from model_api.errors import (
    EmptyRequestError,
    InvalidImageError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

# The pixel cap is ours (Settings.max_image_pixels), checked from the header before
# decoding; PIL's own global guard would only duplicate it with a vaguer message.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
SUPPORTED_TEXT = "PNG, JPEG, BMP, GIF, WebP or TIFF"

# Formats people send by mistake, recognised by their first bytes, so the answer can say so.
_KNOWN_OTHER_FORMATS = (
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG document"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"{", "JSON"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


# Signatures of the formats we read: bytes that start like one but do not open are a damaged
# image (400), not an unsupported file (415).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _claimed_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _IMAGE_SIGNATURES if data.startswith(magic)), None)


def _sniff_other_format(data: bytes) -> str | None:
    head = data[:256].lstrip().lower()
    for magic, what in _KNOWN_OTHER_FORMATS:
        if head.startswith(magic.lower()):
            return what
    if b"<svg" in head:
        return "an SVG drawing"
    return None


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> a fully loaded PIL image (first frame of an animation).

    The pixel count is checked from the header before any pixel is decoded, so a
    decompression bomb costs nothing.
    """
    if not data:
        raise EmptyRequestError(
            "the request carries no image: send the file as the body or as multipart field 'file'"
        )
    other = _sniff_other_format(data)
    if other:
        raise UnsupportedMediaTypeError(
            f"this looks like {other}, not an image; send a {SUPPORTED_TEXT} file"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError as exc:
        claimed = _claimed_format(data)
        if claimed:
            raise InvalidImageError(
                f"the data starts like a {claimed} file but is corrupt and cannot be decoded"
            ) from exc
        raise UnsupportedMediaTypeError(
            f"the data is not an image this service reads; send a {SUPPORTED_TEXT} file"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # e.g. cut off in its header
        raise InvalidImageError("the image is truncated or corrupt and cannot be decoded") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"image is {width}x{height} = {width * height:,} pixels; "
            f"at most {max_pixels:,} pixels are accepted"
        )
    if width < 1 or height < 1:
        raise InvalidImageError("image has no pixels")
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(
            f"the {image.format} image is truncated or corrupt and cannot be decoded"
        ) from exc
    return image
