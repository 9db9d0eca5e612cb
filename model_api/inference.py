"""One ONNX Runtime session per process: provider choice, loading, and thread-safe inference."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_api import metrics, preprocess
from model_api.model_config import ModelConfig, file_sha256
from model_api.model_identity import model_digest

log = logging.getLogger("model_api")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def gpu_visible() -> bool:
    """True when an NVIDIA device node exists and CUDA_VISIBLE_DEVICES does not hide it."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1", "none", "void"):
        return False
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists()


def choose_providers(preference: str) -> list[str]:
    """CUDA first when asked for (or `auto`) and available; CPU always as the fallback."""
    offered = ort.get_available_providers()
    wants_cuda = preference == "cuda" or (preference == "auto" and gpu_visible())
    if wants_cuda and CUDA in offered:
        return [CUDA, CPU]
    if preference == "cuda":
        log.warning("CUDA requested but onnxruntime offers only %s; using the CPU", offered)
    return [CPU]


def batch_shapes(max_batch_size: int, provider: str) -> list[int]:
    """The batch sizes a session pads its batches to: on a GPU, powers of two up to the
    largest, and the largest, so that the provider (cuDNN's tuning above all) only ever sees
    those shapes; on the CPU none, since a padded image costs a whole image's compute there."""
    if provider == CPU:
        return []
    sizes = [1 << i for i in range(max_batch_size.bit_length()) if 1 << i < max_batch_size]
    return [*sizes, max_batch_size]


class ModelRunner:
    """Holds the session; `run()` may be called from several worker threads at once."""

    def __init__(
        self,
        config: ModelConfig,
        path: Path,
        provider: str,
        threads: int,
        version: str = "1",
    ) -> None:
        self.config = config
        self.path = path
        self.version = version
        self.metrics = metrics.for_model(config.name, version)
        self.digest = model_digest(file_sha256(self.path), config)
        """What answers are keyed and receipted by (see `model_api.model_identity`)."""
        ort.disable_telemetry_events()  # nothing leaves the stack (and exit never waits on it)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: spinning burns the cores the
        # other workers, the decoders and Redis need (bench/results/HISTORY.md has the A/B).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = choose_providers(provider)
        if CUDA in providers:
            # requirements-gpu.txt brings CUDA and cuDNN as NVIDIA's pip wheels, which the
            # loader does not search: load them before the CUDA provider needs them.
            ort.preload_dlls()
        self.session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=providers
        )
        self.provider = self.session.get_providers()[0]
        self._check_against_config()
        self._lock = threading.Lock()
        self.inference_count = 0
        self.batch_shapes = batch_shapes(
            config.batching.max_batch_size if config.batching else 1, self.provider
        )
        self._warm_up()
        log.info(
            "loaded model %s version %s (digest %s) on %s (%d threads)",
            config.name,
            version,
            self.digest[:12],
            self.provider,
            threads,
        )

    def _check_against_config(self) -> None:
        (graph_input,) = self.session.get_inputs()
        (graph_output,) = self.session.get_outputs()
        expected_in, expected_out = self.config.input, self.config.output
        if graph_input.name != expected_in.name or graph_output.name != expected_out.name:
            raise ValueError(
                f"{self.path}: graph has input {graph_input.name!r} / output "
                f"{graph_output.name!r}; config says {expected_in.name!r} / {expected_out.name!r}"
            )
        if list(graph_input.shape[1:]) != expected_in.shape[1:]:
            raise ValueError(
                f"{self.path}: input shape {graph_input.shape} does not match config "
                f"{expected_in.shape}"
            )

    def _warm_up(self) -> None:
        """One run per batch shape to come, and one of the preprocessing, so first requests
        pay no set-up (uncounted)."""
        shape = (self.config.channels, self.config.height, self.config.width)
        for size in self.batch_shapes or [1]:
            self._session_run(np.zeros((size, *shape), np.float32))
        preprocess.warm_up(self.config)

    def _session_run(self, batch: np.ndarray) -> np.ndarray:
        (probabilities,) = self.session.run(
            [self.config.output.name], {self.config.input.name: batch}
        )
        return probabilities

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, labels), for a float32 NCHW batch; counted per image.

        On a GPU, a batch is padded to the next of a few fixed sizes (`batch_shapes`), all
        warmed up at start.
        """
        count = len(batch)
        with self._lock:
            self.inference_count += count
        self.metrics.inferences.inc(count)
        self.metrics.executions.inc()
        self.metrics.batch_sizes.observe(count)
        padded = next((size for size in self.batch_shapes if size >= count), count)
        if padded > count:
            filler = np.zeros((padded - count, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, filler])
        start = time.perf_counter()
        rows = self._session_run(batch)
        self.metrics.compute_seconds.observe(time.perf_counter() - start)
        return rows[:count]
