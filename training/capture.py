"""Turn ink coverage into the file a person would send: paper, ink colour, light, blur, codec.

`coverage` is an L image, 0 where there is bare paper and 255 where ink covers it fully. The
result is the decoded image the server receives (after a real PNG/JPEG/BMP round trip), so
codec artefacts are the real ones.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

MIN_CONTRAST = 80  # grey levels between ink and paper; a photo with less is not readable
_LUMA = np.array([0.299, 0.587, 0.114])  # what PIL's convert("L") weighs RGB with


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ _LUMA)


def ink_and_paper(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(ink, paper) RGB colours: grey or coloured, dark on light (3 in 4) or light on dark."""
    coloured = rng.random() < 0.45
    while True:
        if coloured:
            ink, paper = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        else:
            ink, paper = (np.full(3, rng.integers(0, 256)) for _ in range(2))
        light_paper = _luma(paper) > _luma(ink)
        if abs(_luma(paper) - _luma(ink)) >= MIN_CONTRAST and light_paper == (rng.random() < 0.75):
            return ink.astype(np.float64), paper.astype(np.float64)


def lay_ink(
    coverage: Image.Image, ink: np.ndarray, paper: np.ndarray, strength: float = 1.0
) -> Image.Image:
    """RGB page: `paper` where coverage is 0, `ink` (times `strength`) where it is 255."""
    alpha = np.asarray(coverage, dtype=np.float64)[..., None] / 255.0 * strength
    rgb = (1 - alpha) * paper + alpha * ink
    return Image.fromarray(rgb.round().clip(0, 255).astype(np.uint8), "RGB")


def lighting_and_noise(page: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A soft light gradient across the page (photos) and sensor noise."""
    array = np.asarray(page, dtype=np.float64)
    h, w = array.shape[:2]
    if rng.random() < 0.3:
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:h, 0:w]
        ramp = np.cos(angle) * xs / w + np.sin(angle) * ys / h
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-9)
        array = array * (1 - rng.uniform(0.03, 0.15) * ramp)[..., None]
    array = array + rng.normal(0, rng.uniform(0, 4), array.shape)
    return Image.fromarray(array.round().clip(0, 255).astype(np.uint8), "RGB")


def encode_decode(image: Image.Image, fmt: str, **options) -> Image.Image:
    """Save to `fmt` in memory and decode again, as the server would."""
    if fmt == "PNG":
        options.setdefault("compress_level", 1)  # lossless either way; level 6 is 5x slower
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded


def photograph(
    coverage: Image.Image, rng: np.random.Generator, max_blur: float = 1.4
) -> Image.Image:
    """Coverage -> a printed/scanned/photographed page in one of the formats people send;
    out of focus by up to `max_blur` px (keep it below the stroke width)."""
    kind = rng.random()
    if kind < 0.1:  # a transparent PNG: dark ink with the coverage as alpha, no paper at all
        ink = np.full(3, rng.integers(0, 90), dtype=np.uint8)
        rgba = Image.new("RGBA", coverage.size, (*ink.tolist(), 0))
        rgba.putalpha(coverage)
        return encode_decode(rgba, "PNG")
    ink, paper = ink_and_paper(rng)
    page = lay_ink(coverage, ink, paper, strength=rng.uniform(0.8, 1.0))
    if rng.random() < 0.5:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, max(0.3, max_blur))))
    page = lighting_and_noise(page, rng)
    if kind < 0.55:
        return encode_decode(page, "JPEG", quality=int(rng.integers(30, 96)))
    if kind < 0.7:
        return encode_decode(page.convert("L"), "PNG")
    if kind < 0.75:
        return encode_decode(page, "BMP")
    return encode_decode(page, "PNG")
