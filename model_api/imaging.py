"""Decode the bytes a client sent into one image, refusing anything unsafe or unsupported."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from mlserve_common.wire import image_formats
from model_api.errors import (
    EmptyRequestError,
    InvalidImageError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

# The pixel cap is ours (Settings.max_image_pixels), checked from the header before
# decoding; PIL's own global guard would only duplicate it with a vaguer message.
Image.MAX_IMAGE_PIXELS = None
# Headers are read on the event loop: PNG text chunks, which PIL inflates while opening (up
# to 64 MB in all by default), are capped at 1 MB each and 4 MB in all; no model reads them.
PngImagePlugin.MAX_TEXT_CHUNK = 1024 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 4 * 1024 * 1024


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


KEEP_FACTOR = 8
"""Images are shrunk before preprocessing only while both sides stay at least this many
times the model's input: the pipeline's own resize still does the final, exact scaling."""


def bytes_per_pixel(mode: str) -> int:
    """What PIL holds per pixel in memory (multi-band modes use 4 bytes)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def open_image(
    data: bytes, max_pixels: int, max_bytes: int, target: tuple[int, int] | None = None
) -> Image.Image:
    """Bytes -> a PIL image whose header is read and checked, nothing decoded yet.

    The pixel count and the memory the decode will take (pixels x bytes per pixel of the
    first frame, the only one decoded) are checked from the header, so a decompression bomb
    costs nothing. A JPEG is set to decode at a reduced scale (`draft`) when `target`, the
    model's (width, height), is much smaller.
    """
    if not data:
        raise EmptyRequestError(
            "the request carries no image: send the file as the body or as multipart field 'file'"
        )
    other = _sniff_other_format(data)
    if other:
        raise UnsupportedMediaTypeError(
            f"this looks like {other}, not an image; send a {image_formats.NAMES} file"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=image_formats.PIL_FORMATS)
    except UnidentifiedImageError as exc:
        claimed = _claimed_format(data)
        if claimed:
            raise InvalidImageError(
                f"the data starts like a {claimed} file but is corrupt and cannot be decoded"
            ) from exc
        raise UnsupportedMediaTypeError(
            f"the data is not an image this service reads; send a {image_formats.NAMES} file"
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
    if target is not None and image.format == "JPEG":
        image.draft(image.mode, (target[0] * KEEP_FACTOR, target[1] * KEEP_FACTOR))
    cost = decode_bytes(image)
    if cost > max_bytes:
        raise PayloadTooLargeError(
            f"decoding this {image.width}x{image.height} {image.mode} image would take "
            f"{cost / 2**20:,.0f} MiB; at most {max_bytes / 2**20:,.0f} MiB are allowed"
        )
    return image


def decode_bytes(image: Image.Image) -> int:
    """Memory the decoded first frame of an opened image takes."""
    return image.width * image.height * bytes_per_pixel(image.mode)


def load_image(image: Image.Image, target: tuple[int, int] | None = None) -> Image.Image:
    """Decode an opened image (its first frame) and, when `target` is given, shrink it by
    whole factors while both sides stay `KEEP_FACTOR` times the target's."""
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(
            f"the {image.format} image is truncated or corrupt and cannot be decoded"
        ) from exc
    if target is None:
        return image
    width, height = target[0] * KEEP_FACTOR, target[1] * KEEP_FACTOR
    factor = min(image.width // width, image.height // height)
    return shrink(image, factor) if factor >= 2 else image


def shrink(image: Image.Image, factor: int) -> Image.Image:
    """Box-average `factor` x `factor` blocks into one pixel, as the later steps would see
    it: transparency is averaged premultiplied (so paper stays white when laid on white)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        premultiplied = "RGBa" if image.mode == "RGBA" else "La"
        return image.convert(premultiplied).reduce(factor).convert(image.mode)
    if image.mode.startswith("I;16"):
        size = (image.width // factor, image.height // factor)
        return image.resize(size, Image.Resampling.BOX)
    try:
        return image.reduce(factor)
    except ValueError:  # a mode reduce() does not take: leave it to the pipeline's resize
        return image


def decode_image(
    data: bytes,
    max_pixels: int,
    max_bytes: int = 2**62,
    target: tuple[int, int] | None = None,
) -> Image.Image:
    """Bytes -> a fully loaded PIL image (first frame of an animation); see `open_image`
    and `load_image`."""
    return load_image(open_image(data, max_pixels, max_bytes, target), target)
