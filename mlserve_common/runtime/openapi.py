"""OpenAPI description of the image upload both services take on their predict routes."""

from __future__ import annotations

from mlserve_common.wire import image_formats

_BINARY = {"schema": {"type": "string", "format": "binary"}}

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": f"The image file ({image_formats.NAMES}) as the raw body, "
        "or as multipart field `file`.",
        "content": {
            "application/octet-stream": _BINARY,
            **{media_type: _BINARY for media_type in image_formats.MEDIA_TYPES},
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
