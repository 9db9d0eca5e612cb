"""Printed digits: one glyph of a font, varied, on a page the size people send (64-400 px).

Each image is a pure function of (font file, digit, rng): the stroke is made bolder or
lighter, a `7` sometimes gets the bar people add to it, the glyph is stretched, rotated up to
15 degrees and placed anywhere on the page, and the page is photographed
(`training.capture.photograph`). Hairline weights drawn small are thickened to MIN_STROKE px
and blurred less: a print nobody could read in the photo is not a test of the model.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.capture import photograph

PAGE_SIDES = (64, 400)
MAX_ROTATION = 15.0
SEVEN_BAR_SHARE = 0.3
RENDER_HEIGHT = 160  # glyphs are drawn this tall, then scaled onto the page
MIN_STROKE = 1.5  # px on the page: a thinner print is not legible in a photo either
_REFERENCE_SIZE = 100


@lru_cache(maxsize=256)
def _font_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(_font_bytes(path)), size)


def glyph_mask(path: Path, digit: int, height: int, bolder: int = 0) -> Image.Image:
    """The digit's ink as an L mask about `height` px tall, cropped to the ink."""
    reference = _font(path, _REFERENCE_SIZE).getbbox(str(digit), anchor="ls")
    size = max(6, round(_REFERENCE_SIZE * height / max(1, reference[3] - reference[1])))
    font = _font(path, size)
    side = 3 * size + 4 * bolder
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).text(
        (side // 2, side // 2),
        str(digit),
        font=font,
        fill=255,
        anchor="mm",
        stroke_width=bolder,
        stroke_fill=255,
    )
    box = mask.getbbox()
    return mask.crop(box) if box else mask


def add_bar(mask: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Cross a 7's stem near mid-height with a bar as thick as the stroke."""
    array = np.asarray(mask) > 127
    h, w = array.shape
    row = int(h * rng.uniform(0.45, 0.6))
    columns = np.flatnonzero(array[row])
    if len(columns) == 0:
        return mask
    centre = float(columns.mean())
    thickness = max(1, len(columns))
    half = w * rng.uniform(0.22, 0.32)
    barred = mask.copy()
    ImageDraw.Draw(barred).rectangle(
        [centre - half, row - thickness / 2, centre + half, row + thickness / 2], fill=255
    )
    return barred


def stroke_width(mask: Image.Image) -> float:
    """Typical stroke width in px: twice the ink area over the number of edge pixels."""
    ink = np.asarray(mask) > 127
    inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    edge = int(ink.sum()) - int(inner.sum())
    return 2.0 * float(ink.sum()) / max(edge, 1)


def vary_glyph(mask: Image.Image, digit: int, rng: np.random.Generator) -> Image.Image:
    """Stroke weight, the 7's bar, width and rotation."""
    stroke = rng.random()
    if stroke < 0.12 and stroke_width(mask) > 6:
        mask = mask.filter(ImageFilter.MinFilter(3))  # a lighter print
    elif stroke < 0.24:
        mask = mask.filter(ImageFilter.MaxFilter(3))  # ink spread
    if digit == 7 and rng.random() < SEVEN_BAR_SHARE:
        mask = add_bar(mask, rng)
    w, h = mask.size
    mask = mask.resize((max(1, round(w * rng.uniform(0.8, 1.2))), h), Image.Resampling.BICUBIC)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    return mask.rotate(angle, Image.Resampling.BICUBIC, expand=True)


def page_coverage(mask: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """(coverage, stroke width in px): the glyph at a random place on a random page whose
    sides lie within PAGE_SIDES, thickened where its strokes would fall below MIN_STROKE."""
    low, high = PAGE_SIDES
    page = [int(np.exp(rng.uniform(np.log(low), np.log(high)))) for _ in range(2)]
    fill = rng.uniform(0.35, 0.9)  # share of the page the glyph spans, along its longer side
    scale = min(fill * page[0] / mask.width, fill * page[1] / mask.height)
    stroke = stroke_width(mask)
    missing = MIN_STROKE / scale - stroke
    if missing > 0:
        radius = math.ceil(missing / 2)
        mask = mask.filter(ImageFilter.MaxFilter(2 * radius + 1))
        stroke += 2 * radius
    glyph = mask.resize(
        (max(1, round(mask.width * scale)), max(1, round(mask.height * scale))),
        Image.Resampling.LANCZOS,
    )
    coverage = Image.new("L", tuple(page), 0)
    at = (
        int(rng.integers(0, page[0] - glyph.width + 1)),
        int(rng.integers(0, page[1] - glyph.height + 1)),
    )
    coverage.paste(glyph, at)
    return coverage, stroke * scale


def render_printed(path: Path, digit: int, rng: np.random.Generator) -> Image.Image:
    """One printed digit of font `path`, as the decoded image a user would upload."""
    bolder = int(rng.integers(1, 7)) if rng.random() < 0.2 else 0
    mask = vary_glyph(glyph_mask(path, digit, RENDER_HEIGHT, bolder), digit, rng)
    coverage, stroke = page_coverage(mask, rng)
    return photograph(coverage, rng, max_blur=min(1.4, 0.6 * stroke))
