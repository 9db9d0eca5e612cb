"""Images the tests post: the models' own samples, and hand-made odd ones."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from harness import MODELS_DIR


def samples(model: str) -> list[tuple[Path, str]]:
    """(path, expected label) of every sample image shipped with a model."""
    folder = MODELS_DIR / model / "samples"
    labels = json.loads((folder / "labels.json").read_text())
    return [(folder / name, label) for name, label in sorted(labels.items())]


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def drawn_digit_seven(size: int = 200, mode: str = "RGB") -> Image.Image:
    """A '7' in dark ink on light paper, the way a person draws it."""
    image = Image.new("RGB", (size, size), "white")
    s = size / 200
    ImageDraw.Draw(image).line(
        [(55 * s, 35 * s), (145 * s, 35 * s), (85 * s, 170 * s)], fill="black", width=int(14 * s)
    )
    return image.convert(mode)


UPLOAD_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n"
"""An upload's content for multipart parsing tests: a PNG signature, every byte value, and a
line that looks like a boundary but is not this body's."""
