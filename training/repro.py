"""Fixed seeds, deterministic kernels and a fixed thread count for reproducible CPU training."""

from __future__ import annotations

import random

import numpy as np
import torch


def make_deterministic(seed: int, threads: int) -> torch.Generator:
    """Seed every RNG, force deterministic kernels, pin the thread count; return a torch RNG."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - legacy global RNG, seeded for any library using it
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    # Float reductions depend on how work is split across threads: pin it for bit-equal reruns.
    torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)
