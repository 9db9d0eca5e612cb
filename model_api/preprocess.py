"""Turn a decoded user image into the network's input tensor, following the model config.

The first step of `ModelConfig.preprocess` (`convert`) takes the PIL image to `L` or `RGB`
and hands on its pixels as a uint8 numpy array, (H, W) for `L` or (H, W, 3) for `RGB`; each
later step is a small function of that array, which on the small images served here costs
far less than a PIL round trip per step. Resampling stays PIL's own. The steps for photographed
paper (shadows, the table, ruled lines, specks) are in `model_api/paper.py`. `normalize` ends the
pipeline and yields a float32 NCHW array with a batch axis of one. The training pipeline
evaluates through this very module, so what is measured is what is served.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from model_api import paper
from model_api.errors import MLServeError, NoContentError
from model_api.model_config import (
    AutocontrastStep,
    CenterByMassStep,
    ConvertStep,
    CropToContentStep,
    DropSurroundingsStep,
    EvenLightStep,
    FitInBoxStep,
    InvertIfLightBackgroundStep,
    KeepDigitStep,
    ModelConfig,
    NormalizeStep,
    RejectBlankStep,
    RemoveRulesStep,
    ResizeStep,
)

PREPROCESS_REVISION = 2
"""What this module computes, as a number. It is part of every model's digest (the model
identity in cache keys), so cached answers follow it. Bump it whenever a change to this module
changes what any step computes, and re-pin the golden hashes with
`python -m tests.unit.model_api.golden_preprocess --write`
(tests/unit/model_api/test_preprocess_golden.py fails until both are done)."""

WHITE = 255


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL mode to `L` or `RGB`, laying transparency on white paper."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # PIL's own I->L conversion clips at 255 instead of scaling: scale by the bit depth.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F" and array.max() <= 1.0:
            top = 1.0
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
        image = Image.alpha_composite(paper, rgba)
    return image.convert(mode)


def _convert(image: Image.Image, step: ConvertStep) -> np.ndarray:
    """The image in `step.mode` (see `to_mode`) as a uint8 array, read straight from the
    image when it is already in that mode."""
    return np.asarray(image if image.mode == step.mode else to_mode(image, step.mode))


def _gray(pixels: np.ndarray) -> np.ndarray:
    """The pixels in mode L: as they are for L, PIL's own RGB->L conversion for RGB."""
    return pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))


def _reject_blank(pixels: np.ndarray, step: RejectBlankStep) -> np.ndarray:
    """Raise NoContentError when the gray levels span less than `step.min_range`."""
    gray = _gray(pixels)
    if int(gray.max()) - int(gray.min()) < step.min_range:
        raise NoContentError(
            "the image looks blank: nothing stands out from its background, so there is "
            "nothing to classify"
        )
    return pixels


def _invert_if_light_background(
    pixels: np.ndarray, step: InvertIfLightBackgroundStep
) -> np.ndarray:
    """Invert (255 - x) when the median of the border is lighter than mid-way between the
    darkest and the lightest gray level."""
    gray = _gray(pixels)
    b = min(step.border, max(1, min(gray.shape) // 2))
    border = np.sort(np.concatenate([gray[:b], gray[-b:], gray[:, :b], gray[:, -b:]], axis=None))
    # The median, doubled to stay in integers: an even count averages the middle two.
    n = len(border)
    twice_median = int(border[(n - 1) // 2]) + int(border[n // 2])
    # "Light" is relative to the ink, not to mid-grey: paper photographed in dim light, or
    # coloured paper, can be darker than 127 and still carry darker ink.
    return 255 - pixels if twice_median > int(gray.min()) + int(gray.max()) else pixels


def _autocontrast(pixels: np.ndarray, step: AutocontrastStep) -> np.ndarray:
    """`ImageOps.autocontrast(image, cutoff=step.cutoff)`: each band through its own table."""
    if pixels.ndim == 2:
        return _autocontrast_table(pixels, step.cutoff)[pixels]
    bands = range(pixels.shape[2])
    tables = np.stack([_autocontrast_table(pixels[:, :, band], step.cutoff) for band in bands])
    return tables[np.arange(len(tables)), pixels]


def _autocontrast_table(band: np.ndarray, cutoff: float) -> np.ndarray:
    """PIL's autocontrast lookup table for one band (PIL 13's arithmetic, vectorised).

    PIL removes `cut` pixels from each end of the histogram and stretches what is left.
    The lowest value left is the first whose cumulative count exceeds `cut`; the highest,
    the first whose cumulative count reaches `n - cut`. Both follow from the original
    histogram; when the two cuts meet, PIL finds nothing left and so `hi <= lo` here too.
    """
    cumulative = np.cumsum(np.bincount(band.ravel(), minlength=256))
    n = int(cumulative[-1])
    cut = int(n * cutoff // 100)
    lo, hi = np.searchsorted(cumulative, (cut + 1, n - cut))  # first to reach each count
    return _stretch_table(int(lo), int(hi))


@functools.lru_cache(maxsize=1024)
def _stretch_table(lo: int, hi: int) -> np.ndarray:
    """Map `lo`..`hi` onto 0..255 as PIL's autocontrast does: int() of `ix * scale + offset`,
    clamped; the identity when `hi <= lo`."""
    if hi <= lo:
        return np.arange(256, dtype=np.uint8)
    scale = 255.0 / (hi - lo)
    offset = -lo * scale
    return np.clip((np.arange(256) * scale + offset).astype(np.int64), 0, 255).astype(np.uint8)


def _crop_to_content(pixels: np.ndarray, step: CropToContentStep) -> np.ndarray:
    """Crop (a view) to the bounding box of gray levels above `step.threshold`; no-op if none."""
    ink = _gray(pixels) > step.threshold
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return pixels
    cols = np.flatnonzero(ink.any(axis=0))
    return pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _pil_resize(pixels: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """PIL's resize to `size` (width, height), from and to an array."""
    return np.asarray(Image.fromarray(pixels).resize(size, method))


def _fit_in_box(pixels: np.ndarray, step: FitInBoxStep) -> np.ndarray:
    """LANCZOS resize keeping the aspect ratio so that the longer side is `step.size`."""
    height, width = pixels.shape[:2]
    scale = step.size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _pil_resize(pixels, new_size, Image.Resampling.LANCZOS)


def _center_by_mass(pixels: np.ndarray, step: CenterByMassStep) -> np.ndarray:
    """Paste onto a black `step.size` square so the gray centre of mass sits in the middle."""
    array = _gray(pixels).astype(np.float64)
    height, width = array.shape
    total = array.sum()
    if total > 0:  # exact in float64 (integer pixel sums), so the same as a 2-D weighting
        cy = float(np.arange(height) @ array.sum(axis=1)) / total
        cx = float(np.arange(width) @ array.sum(axis=0)) / total
    else:
        cy, cx = (height - 1) / 2, (width - 1) / 2
    top = round((step.size - 1) / 2 - cy)
    left = round((step.size - 1) / 2 - cx)
    # Keep the whole digit on the canvas even when its mass is far off-centre.
    top = min(max(top, 0), max(step.size - height, 0))
    left = min(max(left, 0), max(step.size - width, 0))
    canvas = np.zeros((step.size, step.size, *pixels.shape[2:]), np.uint8)
    # What would fall off the right or bottom edge is clipped, as PIL's paste does.
    rows, cols = min(height, step.size - top), min(width, step.size - left)
    canvas[top : top + rows, left : left + cols] = pixels[:rows, :cols]
    return canvas


def _resize(pixels: np.ndarray, step: ResizeStep) -> np.ndarray:
    """BILINEAR resize to exactly `step.width` x `step.height`."""
    return _pil_resize(pixels, (step.width, step.height), Image.Resampling.BILINEAR)


_IMAGE_STEPS: dict[type, Callable] = {
    ConvertStep: _convert,
    RejectBlankStep: _reject_blank,
    InvertIfLightBackgroundStep: _invert_if_light_background,
    AutocontrastStep: _autocontrast,
    CropToContentStep: _crop_to_content,
    FitInBoxStep: _fit_in_box,
    CenterByMassStep: _center_by_mass,
    ResizeStep: _resize,
    # Photographed paper (model_api/paper.py): before `invert_if_light_background`.
    EvenLightStep: paper.even_light,
    DropSurroundingsStep: paper.drop_surroundings,
    RemoveRulesStep: paper.remove_rules,
    KeepDigitStep: paper.keep_digit,
}


def normalize(image: Image.Image | np.ndarray, step: NormalizeStep) -> np.ndarray:
    """HWC uint8 image -> CHW float32, scaled to [0, 1] then standardised per channel.

    8-bit pixels go through a table of the arithmetic done once for each of the 256 values.
    """
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:  # modes I, F, 1: the arithmetic itself
        array = pixels[:, :, None] if pixels.ndim == 2 else pixels
        return _standardise(array.astype(np.float32), step.mean, step.std).transpose(2, 0, 1).copy()
    tables = _normalize_tables(tuple(step.mean), tuple(step.std))
    if pixels.ndim == 2:
        return tables[:, pixels]
    np.broadcast_shapes(tables.shape[:1], pixels.shape[2:])  # the arithmetic's ValueError
    return tables[np.arange(len(tables))[:, None, None], pixels.transpose(2, 0, 1)]


def _standardise(array: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(array / 255 - mean) / std in float32, channels on the last axis."""
    scaled = array / 255.0
    return (scaled - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _normalize_tables(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """`_standardise` of each byte value, one row of 256 per channel."""
    values = np.arange(256, dtype=np.float32)[:, None]
    return np.ascontiguousarray(_standardise(values, mean, std).T)


def _prepare_pixels(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """Run every step but the final `normalize`; `convert` (always first) makes the array."""
    pixels = image
    for step in config.preprocess[:-1]:
        pixels = _IMAGE_STEPS[type(step)](pixels, step)
    return pixels


def prepare_image(image: Image.Image, config: ModelConfig) -> Image.Image:
    """Run every step but the final `normalize`: what the network will 'see', as an image."""
    return Image.fromarray(_prepare_pixels(image, config))


def preprocess(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """Decoded image -> float32 array of shape (1, C, H, W) matching the model's input."""
    pixels = _prepare_pixels(image, config)
    prepared = (pixels.shape[1], pixels.shape[0])
    expected = (config.width, config.height)
    if prepared != expected:
        raise ValueError(
            f"preprocess for {config.name!r} yields {prepared}, the model expects {expected}"
        )
    return normalize(pixels, config.preprocess[-1])[None]  # type: ignore[arg-type]


def warm_up_image() -> Image.Image:
    """A made-up phone photo: a stroke on ruled paper, the table along the left edge, light
    falling off to the right. Each step for photographed paper has work to do on it."""
    image = Image.new("L", (320, 240), 232)
    draw = ImageDraw.Draw(image)
    for y in range(30, 240, 40):
        draw.line([(0, y), (320, y)], fill=170, width=1)
    draw.line([(150, 60), (170, 180)], fill=40, width=8)
    draw.rectangle([(0, 0), (24, 240)], fill=80)
    draw.ellipse([(250, 200), (253, 203)], fill=60)  # a speck
    light = np.linspace(1.0, 0.7, 320, dtype=np.float32)[None, :]
    return Image.fromarray((np.asarray(image) * light).astype(np.uint8)).convert("RGB")


def warm_up(config: ModelConfig) -> None:
    """Run `config`'s pipeline once on `warm_up_image`, so that a worker's first request pays
    no one-off set-up (OpenCV's first calls take milliseconds). Refusals are ignored."""
    with contextlib.suppress(MLServeError):
        preprocess(warm_up_image(), config)
