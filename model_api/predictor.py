"""The prediction path, free of HTTP: cache lookup -> decode -> preprocess -> infer -> store."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model_api.cache import PredictionCache, cache_key
from model_api.imaging import decode_image
from model_api.inference import ModelRunner
from model_api.preprocess import preprocess
from model_api.schemas import AppType, Prediction, PredictResponse, Timings


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class Predictor:
    """Answers one image at a time; identical concurrent misses share one inference."""

    def __init__(
        self, runner: ModelRunner, cache: PredictionCache, max_pixels: int, workers: int
    ) -> None:
        self.runner = runner
        self.cache = cache
        self.max_pixels = max_pixels
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._in_flight: dict[str, asyncio.Future[tuple[Prediction, Timings]]] = {}

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    async def predict(self, image: bytes, app_type: AppType) -> PredictResponse:
        """The model's answer for these exact bytes, from the cache when it has it."""
        start = time.perf_counter()
        config, version = self.runner.config, self.runner.version
        key = cache_key(app_type, config.name, version, image)
        cached = await self.cache.get(key)
        lookup_ms = _ms(start)
        if cached is not None:
            timings = Timings(cache_lookup_ms=lookup_ms, total_ms=_ms(start))
            return PredictResponse(
                **cached.model_dump(), cached=True, app_type=app_type, timings=timings
            )

        shared = self._in_flight.get(key)
        if shared is not None:  # the same bytes are being inferred right now: wait for that
            prediction, timings = await asyncio.shield(shared)
        else:
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            self._in_flight[key] = future
            try:
                loop = asyncio.get_running_loop()
                prediction, timings = await loop.run_in_executor(self.executor, self._infer, image)
                await self.cache.put(key, prediction)
                future.set_result((prediction, timings))
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved here, so an unwaited future logs nothing
                raise
            finally:
                del self._in_flight[key]
        timings = timings.model_copy(update={"cache_lookup_ms": lookup_ms, "total_ms": _ms(start)})
        return PredictResponse(
            **prediction.model_dump(), cached=False, app_type=app_type, timings=timings
        )

    def _infer(self, image: bytes) -> tuple[Prediction, Timings]:
        """Blocking work, run in a worker thread: decode, preprocess, run the session."""
        config = self.runner.config
        start = time.perf_counter()
        decoded = decode_image(image, self.max_pixels)
        decode_ms = _ms(start)
        start = time.perf_counter()
        batch = preprocess(decoded, config)
        preprocess_ms = _ms(start)
        start = time.perf_counter()
        probabilities = np.clip(self.runner.run(batch)[0].astype(np.float64), 0.0, 1.0)
        inference_ms = _ms(start)
        index = int(np.argmax(probabilities))
        prediction = Prediction(
            model=config.name,
            version=self.runner.version,
            label=config.labels[index],
            class_index=index,
            confidence=float(probabilities[index]),
            probabilities={
                label: float(p) for label, p in zip(config.labels, probabilities, strict=True)
            },
        )
        timings = Timings(
            decode_ms=decode_ms, preprocess_ms=preprocess_ms, inference_ms=inference_ms
        )
        return prediction, timings
