"""OpenAPI description of the image upload both services take on their predict routes."""

from __future__ import annotations

_BINARY = {"schema": {"type": "string", "format": "binary"}}

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image file (PNG, JPEG, BMP, GIF, WebP, TIFF) as the raw body, "
        "or as multipart field `file`.",
        "content": {
            "application/octet-stream": _BINARY,
            "image/png": _BINARY,
            "image/jpeg": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
