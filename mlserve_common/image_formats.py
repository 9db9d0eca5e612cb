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
