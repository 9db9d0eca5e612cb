"""The per-request work every peer does, exactly MLServe's: decode, preprocess, run, encode.

Only `model_api.imaging`, `model_api.preprocess` and `model_api.model_config` are imported
from the repo (pillow, numpy, pydantic; FastAPI for the error classes), so the peers'
own virtualenvs need nothing of MLServe's but those.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_api.imaging import decode_image
from model_api.model_config import ModelConfig, load_model_config
from model_api.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[3]
MODELS_DIR = ROOT / "models"
MAX_PIXELS = 40_000_000
"""model_api's default `max_image_pixels`."""


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


class OnnxModel:
    """One ONNX Runtime session set up as model_api sets up its own."""

    def __init__(self, name: str = "mnist", workers: int = 1) -> None:
        self.config: ModelConfig = load_model_config(MODELS_DIR, name)
        options = ort.SessionOptions()
        # model_api's rule: the cores are divided among the worker processes.
        options.intra_op_num_threads = max(1, cores() // workers)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = MODELS_DIR / name / self.config.file
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, data: bytes) -> np.ndarray:
        """Image bytes -> float32 (1, C, H, W), with model_api's own functions."""
        return preprocess(decode_image(data, MAX_PIXELS), self.config)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> (N, classes) probabilities."""
        return self.session.run(None, {self.input_name: batch})[0]

    def answer(self, probabilities: np.ndarray) -> dict:
        """One row of probabilities -> the JSON answer: label and probability per label."""
        labels = self.config.labels
        index = int(np.argmax(probabilities))
        by_label = dict(zip(labels, map(float, probabilities), strict=True))
        return {"label": labels[index], "probabilities": by_label}

    def predict(self, data: bytes) -> dict:
        """Image bytes -> JSON answer, one image."""
        return self.answer(self.run(self.prepare(data))[0])
