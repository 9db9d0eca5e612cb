"""The mnist training set: real MNIST digits, printed digits and canvas strokes, as served views.

Every digit comes as two views, one picked at random per sample and step (see `train.fit`):
MNIST as its raw 28x28 tensor and as a user-style page run through the served preprocessing;
printed and canvas digits as two independent drawings. Real MNIST is repeated so that real
handwriting stays close to half of what the network sees.
"""

from __future__ import annotations

import numpy as np
import torch

from model_api.model_config import ModelConfig
from training import digit_sources, mnist_data

MIX = {"printed": 6000, "canvas": 3000}  # training digits per synthetic source
MNIST_REPEAT = 2  # 4,000 real digits x 2 = 8,000 of 17,000


def mnist_views(max_train: int | None, seed: int, config: ModelConfig,
                ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (2, N, 28, 28): raw MNIST and a user-style page through serving; int64 labels."""
    x, y = mnist_data.load_digits()
    train, _ = mnist_data.stratified_split(y)
    train = train[:max_train] if max_train else train
    rng = np.random.default_rng(seed)
    served = np.stack([mnist_data.serving_view(mnist_data.render_varied(d, rng), config)
                       for d in x[train]])
    return np.stack([x[train], served]), y[train]


def training_set(max_train: int | None, seed: int, config: ModelConfig,
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """uint8 (2, N, 1, 28, 28) views, int64 labels, and how many digits came from each source."""
    mnist_x, mnist_y = mnist_views(max_train, seed, config)
    parts = [(mnist_x, mnist_y)] * MNIST_REPEAT
    counts = {"mnist": len(mnist_y)}
    for source, n in MIX.items():
        n = min(n, max_train) if max_train else n
        parts.append(digit_sources.training_views(source, n, seed, config))
        counts[source] = n
    x = np.concatenate([p[0] for p in parts], axis=1)[:, :, None]
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y), counts


def pixel_statistics() -> tuple[float, float]:
    """Mean and std of the raw training MNIST digits in [0, 1] (the config's normalisation)."""
    x, y = mnist_data.load_digits()
    train, _ = mnist_data.stratified_split(y)
    raw = torch.from_numpy(x[train]).float() / 255.0
    return float(raw.mean()), float(raw.std())
