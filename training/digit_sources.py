"""The three sources of mnist digits beyond one another: real MNIST, printed fonts, canvas strokes.

Every synthetic image is a pure function of (source, purpose, seed, index, view): its own
`numpy` generator is seeded with all five, so a set is the same however it is split across
processes, and held-out images come from streams training never draws from. Label = index % 10.
Printed training digits come from the training font families, held-out ones from the families
kept aside (`training.fonts.HELDOUT_FAMILIES`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from model_api.model_config import ModelConfig
from model_api.preprocess import prepare_image
from training import fonts
from training.printed import render_printed
from training.strokes import render_canvas

SYNTHETIC = ("printed", "canvas")
SOURCES = ("mnist", *SYNTHETIC)
TRAIN, HELDOUT = 0, 1
HELDOUT_SEED = 0  # held-out streams differ from training ones by `purpose`, whatever the seed
HELDOUT_N = {"printed": 1200, "canvas": 600}  # mnist: the 1,000 of mnist_data.stratified_split


def synthetic_image(
    source: str,
    purpose: int,
    seed: int,
    index: int,
    view: int = 0,
) -> Image.Image:
    """One decoded user image of digit `index % 10` from a synthetic source."""
    rng = np.random.default_rng([SYNTHETIC.index(source) + 1, purpose, seed, index, view])
    digit = index % 10
    if source == "canvas":
        return render_canvas(digit, rng)
    families = fonts.training_families() if purpose == TRAIN else fonts.heldout_families()
    files = fonts.font_files()[families[(index // 10) % len(families)]]
    return render_printed(files[int(rng.integers(len(files)))], digit, rng)


def heldout_set(source: str, n: int | None = None) -> tuple[list[Image.Image], np.ndarray]:
    """(images, labels) of a synthetic source's held-out set, balanced over digits and families."""
    n = n or HELDOUT_N[source]
    images = [synthetic_image(source, HELDOUT, HELDOUT_SEED, i) for i in range(n)]
    return images, np.arange(n) % 10


def training_views(
    source: str, n: int, seed: int, config: ModelConfig, views: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (views, n, 28, 28) served views of `n` training digits, and their int64 labels."""
    arrays = np.stack(
        [
            np.stack(
                [
                    np.asarray(
                        prepare_image(synthetic_image(source, TRAIN, seed, i, v), config),
                        dtype=np.uint8,
                    )
                    for i in range(n)
                ]
            )
            for v in range(views)
        ]
    )
    return arrays, np.arange(n, dtype=np.int64) % 10
