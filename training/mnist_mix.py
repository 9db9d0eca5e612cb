"""The mnist training set: real MNIST digits, printed digits, canvas strokes and phone photos
of a digit on paper, as served views.

Every digit comes as two views, one picked at random per sample and step (see `train.fit`):
MNIST as its raw 28x28 tensor and as a user-style page run through the served preprocessing;
printed and canvas digits as two independent drawings; phone photos as two photos of the same
digit (`training.phone_photos`, training split, every condition mixed), decoded as model_api
decodes an upload. Real MNIST is repeated so that real handwriting stays close to half of what
the network sees.
"""

from __future__ import annotations

import functools
import multiprocessing
import os

import numpy as np
import torch

from model_api.model_config import ModelConfig
from model_api.preprocess import prepare_image
from training import digit_sources, mnist_data, phone_photos
from training.phone_eval import decode_as_served

MIX = {"printed": 6000, "canvas": 3000}  # training digits per synthetic source
PHONE = 3000  # training digits shown as phone photos (two photos each)
MNIST_REPEAT = 2  # 4,000 real digits x 2 = 8,000 of 20,000


def mnist_views(
    max_train: int | None,
    seed: int,
    config: ModelConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (2, N, 28, 28): raw MNIST and a user-style page through serving; int64 labels."""
    x, y = mnist_data.load_digits()
    train, _ = mnist_data.stratified_split(y)
    train = train[:max_train] if max_train else train
    rng = np.random.default_rng(seed)
    served = np.stack(
        [mnist_data.serving_view(mnist_data.render_varied(d, rng), config) for d in x[train]]
    )
    return np.stack([x[train], served]), y[train]


def _phone_view(index: int, seed: int, split: str, config: ModelConfig) -> np.ndarray:
    """Phone photo `index` of a set, decoded as served, through the served preprocessing."""
    data, _, _ = phone_photos.photo(seed, index, split, "mixed")
    image = decode_as_served(data, (config.width, config.height))
    return np.asarray(prepare_image(image, config), dtype=np.uint8)


def served_phone_photos(
    indices: range,
    seed: int,
    split: str,
    config: ModelConfig,
) -> np.ndarray:
    """uint8 (len(indices), H, W): phone photos `indices` of a `mixed` set as the network sees
    them. Made on every core, in fresh processes: each photo is a pure function of its seed,
    index and split, so the result is the same however many there are."""
    make = functools.partial(_phone_view, seed=seed, split=split, config=config)
    with multiprocessing.get_context("spawn").Pool(min(4, os.cpu_count() or 1)) as pool:
        return np.stack(pool.map(make, indices, chunksize=25))


def phone_views(n: int, seed: int, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (2, n, 28, 28) served views of `n` digits as phone photos, and their int64 labels:
    view v of digit i is training photo v * n + i (its label, index % 10, is i's: `n` is made
    a multiple of ten)."""
    n = max(10, n - n % 10)
    views = served_phone_photos(range(2 * n), seed, "train", config)
    return views.reshape(2, n, *views.shape[1:]), np.arange(n, dtype=np.int64) % 10


def training_set(
    max_train: int | None,
    seed: int,
    config: ModelConfig,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """uint8 (2, N, 1, 28, 28) views, int64 labels, and how many digits came from each source."""
    mnist_x, mnist_y = mnist_views(max_train, seed, config)
    parts = [(mnist_x, mnist_y)] * MNIST_REPEAT
    counts = {"mnist": len(mnist_y)}
    for source, n in MIX.items():
        n = min(n, max_train) if max_train else n
        parts.append(digit_sources.training_views(source, n, seed, config))
        counts[source] = n
    phone = phone_views(min(PHONE, max_train) if max_train else PHONE, seed, config)
    parts.append(phone)
    counts["phone"] = len(phone[1])
    x = np.concatenate([p[0] for p in parts], axis=1)[:, :, None]
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y), counts


def pixel_statistics() -> tuple[float, float]:
    """Mean and std of the raw training MNIST digits in [0, 1] (the config's normalisation)."""
    x, y = mnist_data.load_digits()
    train, _ = mnist_data.stratified_split(y)
    raw = torch.from_numpy(x[train]).float() / 255.0
    return float(raw.mean()), float(raw.std())
