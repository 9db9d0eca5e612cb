"""Leukemia datasets: the synthetic generator, or a real folder-per-class tree (C-NMC layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.synth_leukemia import LABELS, make_image

SYNTH_SEED = 7
TEST_OFFSET = 1_000_000  # synthetic held-out images come from a disjoint index range
N_TRAIN = 2400
N_TEST = 600
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 2024


def synthetic(n: int, test: bool, seed: int = SYNTH_SEED) -> tuple[list[Image.Image], list[int]]:
    """`n` class-balanced synthetic images (train or held-out range) and their label indices."""
    start = TEST_OFFSET if test else 0
    pairs = [make_image(seed, start + i, label=i % 2) for i in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def folder_labels(data_dir: Path) -> list[str]:
    """Class names = the sub-folders of `data_dir` (for C-NMC: `all`, `hem`)."""
    names = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise ValueError(f"{data_dir}: need one sub-folder per class (e.g. all/ and hem/)")
    return names


def folder_split(
    data_dir: Path, labels: list[str], test: bool, seed: int = SPLIT_SEED
) -> list[tuple[Path, int]]:
    """Stratified, seeded 80/20 split of a folder-per-class tree: (path, label) pairs."""
    rng = np.random.default_rng(seed)
    chosen: list[tuple[Path, int]] = []
    for index, name in enumerate(labels):
        files = sorted(
            p for p in (data_dir / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        )
        order = rng.permutation(len(files))
        n_test = max(1, round(len(files) * HELDOUT_FRACTION))
        picked = order[:n_test] if test else order[n_test:]
        chosen += [(files[i], index) for i in sorted(picked)]
    return chosen


def open_image(path: Path) -> Image.Image:
    """Decode an image file fully (so the file handle is closed)."""
    with Image.open(path) as image:
        image.load()
        return image.copy()


__all__ = ["LABELS", "folder_labels", "folder_split", "open_image", "synthetic"]
