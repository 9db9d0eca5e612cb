"""BentoML peer: models/mnist as a BentoML service, run from its own venv (.venv-bentoml).

Two services, picked on the command line (`bentoml serve MODULE:Mnist` or `:MnistBatched`):
`Mnist` answers each request on its own; `MnistBatched` is the same work with BentoML's
adaptive batching, which merges the `file` lists of concurrent requests into one call.
Worker processes (BENCH_WORKERS), and the batch limits (BENCH_MAX_BATCH,
BENCH_MAX_LATENCY_MS) come from the environment, as the decorators need them at import.
Access logs are off, as they are in MLServe by default.
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import numpy as np

from bench.peers.servers.model import OnnxModel

WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
MAX_BATCH = int(os.environ.get("BENCH_MAX_BATCH", "32"))
MAX_LATENCY_MS = int(os.environ.get("BENCH_MAX_LATENCY_MS", "10000"))
"""BentoML answers 503 to requests it expects to miss this; a tight value sheds load on a busy
machine instead of batching it (20 ms failed half the requests here)."""
CONFIG = {"workers": WORKERS, "traffic": {"timeout": 30}, "logging": {"access": {"enabled": False}}}


@bentoml.service(**CONFIG)
class Mnist:
    """One image per call; BentoML stores the upload as a temp file (its `Path` input)."""

    def __init__(self) -> None:
        self.model = OnnxModel("mnist", workers=WORKERS)

    @bentoml.api
    def predict(self, file: Path) -> dict:
        return self.model.predict(file.read_bytes())


@bentoml.service(**CONFIG)
class MnistBatched:
    """Adaptive batching: each request sends a list of one file; BentoML joins the lists."""

    def __init__(self) -> None:
        self.model = OnnxModel("mnist", workers=WORKERS)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, file: list[Path]) -> list[dict]:
        batch = np.concatenate([self.model.prepare(path.read_bytes()) for path in file])
        return [self.model.answer(row) for row in self.model.run(batch)]
