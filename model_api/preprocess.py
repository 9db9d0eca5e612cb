"""Turn a decoded user image into the network's input tensor, following the model config.

Each step of `ModelConfig.preprocess` is a small function of a PIL image; `normalize`
ends the pipeline and yields a float32 NCHW array with a batch axis of one. The training
pipeline evaluates through this very module, so what is measured is what is served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps

from model_api.errors import NoContentError
from model_api.model_config import (
    AutocontrastStep,
    CenterByMassStep,
    ConvertStep,
    CropToContentStep,
    FitInBoxStep,
    InvertIfLightBackgroundStep,
    ModelConfig,
    NormalizeStep,
    RejectBlankStep,
    ResizeStep,
)

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


def _convert(image: Image.Image, step: ConvertStep) -> Image.Image:
    return to_mode(image, step.mode)


def _reject_blank(image: Image.Image, step: RejectBlankStep) -> Image.Image:
    low, high = _gray(image).getextrema()
    if high - low < step.min_range:
        raise NoContentError(
            "the image looks blank: nothing stands out from its background, so there is "
            "nothing to classify"
        )
    return image


def _invert_if_light_background(
    image: Image.Image, step: InvertIfLightBackgroundStep
) -> Image.Image:
    gray = _gray(image)
    array = np.asarray(gray)
    b = min(step.border, max(1, min(array.shape) // 2))
    border = np.concatenate(
        [array[:b].ravel(), array[-b:].ravel(), array[:, :b].ravel(), array[:, -b:].ravel()]
    )
    # "Light" is relative to the ink, not to mid-grey: paper photographed in dim light, or
    # coloured paper, can be darker than 127 and still carry darker ink.
    low, high = gray.getextrema()
    return ImageOps.invert(image) if float(np.median(border)) > (low + high) / 2 else image


def _autocontrast(image: Image.Image, step: AutocontrastStep) -> Image.Image:
    return ImageOps.autocontrast(image, cutoff=step.cutoff)


def _crop_to_content(image: Image.Image, step: CropToContentStep) -> Image.Image:
    box = _gray(image).point(_threshold_table(step.threshold)).getbbox()
    return image.crop(box) if box else image


@functools.cache
def _threshold_table(threshold: int) -> list[int]:
    return [255 if v > threshold else 0 for v in range(256)]


def _gray(image: Image.Image) -> Image.Image:
    """The image in mode L, without a copy when it already is."""
    return image if image.mode == "L" else image.convert("L")


def _fit_in_box(image: Image.Image, step: FitInBoxStep) -> Image.Image:
    width, height = image.size
    scale = step.size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS)


def _center_by_mass(image: Image.Image, step: CenterByMassStep) -> Image.Image:
    array = np.asarray(_gray(image), dtype=np.float64)
    canvas = Image.new(image.mode, (step.size, step.size), 0)
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
    canvas.paste(image, (left, top))
    return canvas


def _resize(image: Image.Image, step: ResizeStep) -> Image.Image:
    return image.resize((step.width, step.height), Image.Resampling.BILINEAR)


_IMAGE_STEPS: dict[type, Callable] = {
    ConvertStep: _convert,
    RejectBlankStep: _reject_blank,
    InvertIfLightBackgroundStep: _invert_if_light_background,
    AutocontrastStep: _autocontrast,
    CropToContentStep: _crop_to_content,
    FitInBoxStep: _fit_in_box,
    CenterByMassStep: _center_by_mass,
    ResizeStep: _resize,
}


def normalize(image: Image.Image, step: NormalizeStep) -> np.ndarray:
    """HWC uint8 image -> CHW float32, scaled to [0, 1] then standardised per channel."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    mean = np.asarray(step.mean, dtype=np.float32)
    std = np.asarray(step.std, dtype=np.float32)
    return ((array - mean) / std).transpose(2, 0, 1).copy()


def prepare_image(image: Image.Image, config: ModelConfig) -> Image.Image:
    """Run every step but the final `normalize`: what the network will 'see', as an image."""
    for step in config.preprocess[:-1]:
        image = _IMAGE_STEPS[type(step)](image, step)
    return image


def preprocess(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """Decoded image -> float32 array of shape (1, C, H, W) matching the model's input."""
    prepared = prepare_image(image, config)
    expected = (config.width, config.height)
    if prepared.size != expected:
        raise ValueError(
            f"preprocess for {config.name!r} yields {prepared.size}, the model expects {expected}"
        )
    return normalize(prepared, config.preprocess[-1])[None]  # type: ignore[arg-type]
