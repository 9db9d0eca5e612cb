"""The prediction path, free of HTTP: cache lookup -> decode -> preprocess -> infer -> store.

A cache hit costs one Redis GET and a splice of stored bytes: no thread pool, no pydantic.
A miss decodes and preprocesses in a worker thread (several run in parallel), then infers
alone or in a dynamic batch (when the model's config asks for one); identical concurrent
misses anywhere in the deployment share one inference (see `singleflight.py`).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model_api import answers, metrics
from model_api.batching import Batcher
from model_api.cache import PredictionCache, cache_key
from model_api.imaging import decode_image
from model_api.inference import ModelRunner
from model_api.preprocess import preprocess
from model_api.singleflight import SingleFlight


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


class Predictor:
    """Answers one image at a time, as the final JSON bytes of a `PredictResponse`."""

    def __init__(
        self,
        runner: ModelRunner,
        cache: PredictionCache,
        max_pixels: int,
        threads: int,
        lease_ms: int,
    ) -> None:
        self.runner = runner
        self.cache = cache
        self.max_pixels = max_pixels
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference")
        batching = runner.config.batching
        self.batcher = Batcher(runner, batching) if batching else None
        name = runner.config.name
        self.flight = SingleFlight(cache, self._readable, lease_ms, name)
        self._hits = metrics.CACHE_HITS.labels(name)
        self._misses = metrics.CACHE_MISSES.labels(name)
        self._hit_seconds = metrics.REQUESTS.labels(name, "true")
        self._miss_seconds = metrics.REQUESTS.labels(name, "false")

    def start(self) -> None:
        if self.batcher is not None:
            self.batcher.start()

    async def close(self) -> None:
        """Let queued and running inferences finish."""
        if self.batcher is not None:
            await self.batcher.close()
        self.executor.shutdown(wait=True)

    async def predict(self, image: bytes, app_type: str) -> bytes:
        """The model's answer for these exact bytes, from the cache when it has it."""
        start = time.perf_counter()
        key = cache_key(app_type, self.runner.config.name, self.runner.version, image)
        outcome = await self.flight.run(key, lambda: self._compute(image))
        total_ms = _ms(start)
        if outcome.source == "cache":
            self._hits.inc()
            self._hit_seconds.observe(total_ms / 1000)
        else:
            if self.cache.up:
                self._misses.inc()
            self._miss_seconds.observe(total_ms / 1000)
        timings = {**outcome.timings, "total_ms": total_ms}
        return answers.answer(outcome.prediction, outcome.from_cache, app_type, timings)

    def _readable(self, raw: bytes) -> bool:
        return answers.is_prediction_of(raw, self.runner.config, self.runner.version)

    async def _compute(self, image: bytes) -> tuple[bytes, dict[str, float]]:
        loop = asyncio.get_running_loop()
        if self.batcher is None:
            return await loop.run_in_executor(self.executor, self._infer_alone, image)
        with self.batcher.expecting() as announcement:
            tensor, timings = await loop.run_in_executor(self.executor, self._prepare, image)
            start = time.perf_counter()
            row = await self.batcher.infer(tensor, announcement)
        timings["inference_ms"] = _ms(start)  # includes the wait for batch-mates
        return self._encode(row), timings

    def _prepare(self, image: bytes) -> tuple[np.ndarray, dict[str, float]]:
        """Blocking: bytes -> decoded image -> the model's (1, C, H, W) input."""
        start = time.perf_counter()
        decoded = decode_image(image, self.max_pixels)
        decode_ms = _ms(start)
        start = time.perf_counter()
        tensor = preprocess(decoded, self.runner.config)
        return tensor, {"decode_ms": decode_ms, "preprocess_ms": _ms(start)}

    def _infer_alone(self, image: bytes) -> tuple[bytes, dict[str, float]]:
        """Blocking, in a worker thread: prepare, run the session on this image alone."""
        tensor, timings = self._prepare(image)
        start = time.perf_counter()
        row = self.runner.run(tensor)[0]
        timings["inference_ms"] = _ms(start)
        return self._encode(row), timings

    def _encode(self, row: np.ndarray) -> bytes:
        return answers.encode_prediction(self.runner.config, self.runner.version, row)
