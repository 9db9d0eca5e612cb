"""The prediction path, free of HTTP: cache lookup -> decode -> preprocess -> infer -> store.

A cache hit costs one Redis GET and a splice of stored bytes: no thread pool, no pydantic.
A miss reads the image's header on the event loop (its size and the memory its decode will
take are checked there), decodes and preprocesses in a worker thread (several run in
parallel; images whose decode is large take a lane of their own, so they cannot hold every
thread), then infers alone or in a dynamic batch (when the model's config asks for one).
Tiny images (`inline_max_pixels`) are decoded, preprocessed and (unbatched) inferred on
the event loop instead.
Identical concurrent misses anywhere in the deployment share one inference (see
`singleflight.py`).

When the client goes away (the request task is cancelled), work that has not started is
dropped; an inference already running finishes and its answer still goes to the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image

from mlserve_common.runtime import tracing
from mlserve_common.wire import answer_json
from mlserve_common.wire.cache_keys import cache_key, image_sha256
from model_api import answers
from model_api.batching import Batcher
from model_api.cache import PredictionCache
from model_api.errors import MLServeError
from model_api.imaging import decode_bytes, load_image, open_image
from model_api.inference import ModelRunner
from model_api.preprocess import preprocess
from model_api.singleflight import Outcome, SingleFlight

T = TypeVar("T")


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding one image may cost (see model_api.config.Settings)."""

    max_pixels: int
    max_bytes: int
    large_bytes: int
    large_threads: int
    inline_pixels: int


class Predictor:
    """Answers one image at a time, as the final JSON bytes of a `PredictResponse`, and V2
    requests as rows of probabilities. Read top-down:

    `predict` / `infer_v2`: the cache, shared by identical concurrent misses (`SingleFlight`)
      -> `_infer_image`: the header read, then `_alone` or `_batched`
      -> `_on_lane`: tiny on the event loop, large in its own threads, the rest in threads
      -> the stages `_decode_preprocess(_infer)`, then `_encode` (the cache keeps its bytes);
    and `_store_late`: an answer inferred after its client left still goes to the cache.
    """

    def __init__(
        self,
        runner: ModelRunner,
        cache: PredictionCache,
        limits: DecodeLimits,
        threads: int,
        lease_ms: int,
    ) -> None:
        self.runner = runner
        self.cache = cache
        self.limits = limits
        self.target = (runner.config.width, runner.config.height)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference")
        self.large_executor = ThreadPoolExecutor(
            max_workers=limits.large_threads, thread_name_prefix="large-decode"
        )
        batching = runner.config.batching
        self.batcher = Batcher(runner, batching) if batching else None
        self.metrics = runner.metrics
        self.flight = SingleFlight(cache, self._readable, lease_ms, self.metrics)
        self.v2_flight = SingleFlight(cache, self._readable_v2, lease_ms, self.metrics)

    def start(self) -> None:
        if self.batcher is not None:
            self.batcher.start()

    async def close(self) -> None:
        """Let queued and running inferences finish."""
        if self.batcher is not None:
            await self.batcher.close()
        self.executor.shutdown(wait=True)
        self.large_executor.shutdown(wait=True)

    async def predict(self, image: bytes, app_type: str) -> bytes:
        """The model's answer for these exact bytes, from the cache when it has it."""
        sha256 = image_sha256(image)
        key = self._key(app_type, sha256)
        start = self._begin()
        try:
            outcome = await self.flight.run(key, lambda: self._compute(key, image, sha256))
        except BaseException as exc:
            self._failed(exc)
            raise
        total_ms = self._succeeded(outcome, start)
        timings = {**outcome.timings, "total_ms": total_ms}
        return answer_json.answer(outcome.prediction, outcome.from_cache, app_type, timings)

    async def stored(self, app_type: str, sha256: str) -> bytes | None:
        """The answer an upload of the image whose SHA-256 is `sha256` would get from the
        cache now, or None: asked by content, without the image and without inferring."""
        start = time.perf_counter()
        raw = await self.cache.get(self._key(app_type, sha256))
        if raw is None or not answers.is_prediction_of(raw, self.runner.config, self.digest):
            return None
        timings = {"cache_lookup_ms": _ms(start), "total_ms": _ms(start)}
        return answer_json.answer(raw, True, app_type, timings)

    def _key(self, app_type: str, sha256: str) -> str:
        return cache_key(app_type, self.runner.config.name, self.digest, sha256)

    @property
    def digest(self) -> str:
        return self.runner.digest

    async def infer_v2(
        self, key: str, images: list[bytes] | None = None, tensor: np.ndarray | None = None
    ) -> tuple[np.ndarray, bool]:
        """Class probabilities, shape (N, labels), for N encoded images (each decoded and
        preprocessed as `/predict` does) or for an (N, C, H, W) tensor (straight to the
        session); from the cache when it has `key`. Also: whether it came from the cache."""
        if images is not None:
            compute = lambda: self._v2_images(key, images)  # noqa: E731
        else:
            compute = lambda: self._v2_tensor(tensor)  # noqa: E731
        start = self._begin()
        try:
            outcome = await self.v2_flight.run(key, compute)
        except BaseException as exc:
            self._failed(exc)
            raise
        self._succeeded(outcome, start)
        return answers.v2_rows(outcome.prediction), outcome.from_cache

    # requests in flight, and each one's success or failure (by error code)
    def _begin(self) -> float:
        self.metrics.in_flight.inc()
        return time.perf_counter()

    def _failed(self, exc: BaseException) -> None:
        self.metrics.in_flight.dec()
        if isinstance(exc, MLServeError):
            code = exc.code
        elif isinstance(exc, asyncio.CancelledError):
            code = "client_disconnected"
        else:
            code = "internal_error"
        self.metrics.failure(code).inc()

    def _succeeded(self, outcome: Outcome, start: float) -> float:
        self.metrics.in_flight.dec()
        self.metrics.successes.inc()
        return self._observe(outcome, start)

    def _observe(self, outcome: Outcome, start: float) -> float:
        """Count a hit or a miss and time it; the total in milliseconds."""
        total_ms = _ms(start)
        lookup_ms = outcome.timings.get("cache_lookup_ms")
        if lookup_ms is not None:
            self.metrics.lookup_seconds.observe(lookup_ms / 1000)
        if outcome.source == "cache":
            self.metrics.hits.inc()
            self.metrics.hit_seconds.observe(total_ms / 1000)
        else:
            if self.cache.up:
                self.metrics.misses.inc()
            self.metrics.miss_seconds.observe(total_ms / 1000)
        return total_ms

    async def _v2_images(self, key: str, images: list[bytes]) -> tuple[bytes, dict[str, float]]:
        one_row = lambda row: self._encode_v2(row[None])  # noqa: E731
        late = self._store_late(key, one_row) if len(images) == 1 else None
        results = await asyncio.gather(*(self._infer_image(image, late) for image in images))
        rows = np.stack([row for row, _ in results])
        return self._encode_v2(rows), results[0][1] if len(results) == 1 else {}

    async def _v2_tensor(self, tensor: np.ndarray) -> tuple[bytes, dict[str, float]]:
        start = time.perf_counter()
        if self.batcher is not None and len(tensor) == 1:
            rows = (await self.batcher.infer(tensor))[None]
        else:
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(self.executor, self.runner.run, tensor)
            tracing.record(
                "inference", start, time.perf_counter(), **{"mlserve.batch_size": len(tensor)}
            )
        return self._encode_v2(rows), {"inference_ms": _ms(start)}

    def _encode_v2(self, rows: np.ndarray) -> bytes:
        return answers.encode_v2(self.runner.config, self.digest, rows)

    def _readable(self, raw: bytes) -> bool:
        return answers.is_prediction_of(raw, self.runner.config, self.digest)

    def _readable_v2(self, raw: bytes) -> bool:
        return answers.is_v2_of(raw, self.runner.config, self.digest)

    async def _compute(self, key: str, image: bytes, sha256: str) -> tuple[bytes, dict[str, float]]:
        encode = lambda row: self._encode(row, sha256)  # noqa: E731
        row, timings = await self._infer_image(image, self._store_late(key, encode))
        return encode(row), timings

    # One image: decode -> preprocess -> (batch) -> infer, on the lane its size picks.
    async def _infer_image(
        self, image: bytes, late: Callable[[np.ndarray], None] | None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """One encoded image's row of probabilities, and the time each stage took. Its
        header is read here, on the event loop: decode's first step, where the image's size
        and the memory its decode will take are checked against the limits."""
        start = time.perf_counter()
        opened = open_image(image, self.limits.max_pixels, self.limits.max_bytes, self.target)
        header_ms = _ms(start)
        if self.batcher is None:
            row, timings = await self._alone(opened, late)
        else:
            row, timings = await self._batched(opened, late)
        timings["decode_ms"] += header_ms
        return row, timings

    async def _alone(
        self, opened: Image.Image, late: Callable[[np.ndarray], None] | None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Unbatched: decode, preprocess and infer in one go, on the image's lane."""
        return await self._on_lane(self._decode_preprocess_infer, opened, late)

    async def _batched(
        self, opened: Image.Image, late: Callable[[np.ndarray], None] | None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Batched: decode and preprocess on the image's lane, then infer in one session run
        with the images queued meanwhile (the batcher knows this one is coming, so it waits
        for it while it is decoded)."""
        assert self.batcher is not None
        with self.batcher.expecting() as announcement:
            tensor, timings = await self._on_lane(self._decode_preprocess, opened, None)
            start = time.perf_counter()
            row = await self.batcher.infer(
                tensor, announcement, late=late, inline=self._tiny(opened)
            )
        timings["inference_ms"] = _ms(start)  # includes the wait for batch-mates
        return row, timings

    async def _on_lane(
        self,
        work: Callable[[Image.Image], T],
        opened: Image.Image,
        late: Callable[[np.ndarray], None] | None,
    ) -> T:
        """`work(opened)` on the lane the image's size picks:
        - tiny (`inline_max_pixels`): on the event loop, where the hop to a thread and back
          would cost more than the work;
        - large (a decode over `large_decode_bytes`): in the large-decode threads, so that
          large images cannot hold every thread;
        - otherwise: in the inference threads."""
        if self._tiny(opened):
            return work(opened)
        if self._large(opened):
            return await self._in_thread(self.large_executor, work, opened, late)
        return await self._in_thread(self.executor, work, opened, late)

    def _tiny(self, opened: Image.Image) -> bool:
        return opened.width * opened.height <= self.limits.inline_pixels

    def _large(self, opened: Image.Image) -> bool:
        return decode_bytes(opened) > self.limits.large_bytes

    async def _in_thread(
        self,
        executor: ThreadPoolExecutor,
        work: Callable[[Image.Image], T],
        opened: Image.Image,
        late: Callable[[np.ndarray], None] | None,
    ) -> T:
        """`work(opened)` in a thread. The client leaving (cancelled) before it starts: the
        work is dropped. Leaving while it runs (late): it finishes, and `late` (if given)
        stores what it infers in the cache."""
        since, context = time.perf_counter(), tracing.capture()
        if context is None:
            job = executor.submit(self._started, work, opened, since)
        else:  # the thread's spans and log lines are the request's
            job = executor.submit(context.run, self._started, work, opened, since)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if job.cancelled():
                self.metrics.dropped.inc()
            elif late is not None:
                self.metrics.finished.inc()
                job.add_done_callback(lambda done: _deliver(done, late))
            raise

    def _started(self, work: Callable[[Image.Image], T], opened: Image.Image, since: float) -> T:
        """In the worker thread: record how long the job queued, then do it."""
        now = time.perf_counter()
        self.metrics.queue_seconds.observe(now - since)
        tracing.record("queue", since, now)
        return work(opened)

    def _store_late(
        self, key: str, encode: Callable[[np.ndarray], bytes]
    ) -> Callable[[np.ndarray], None]:
        """Stores an answer computed after its client left (callable from any thread)."""
        loop = asyncio.get_running_loop()

        def store(row: np.ndarray) -> None:
            value = encode(row)
            loop.call_soon_threadsafe(lambda: loop.create_task(self.cache.put(key, value)))

        return store

    # The stages, blocking: called on the event loop (tiny) or in a thread.
    def _decode_preprocess(self, image: Image.Image) -> tuple[np.ndarray, dict[str, float]]:
        """Opened image -> decoded (and shrunk) -> the model's (1, C, H, W) input."""
        start = time.perf_counter()
        with tracing.span("decode"):
            decoded = load_image(image, self.target)
        decode_ms = _ms(start)
        start = time.perf_counter()
        with tracing.span("preprocess"):
            tensor = preprocess(decoded, self.runner.config)
        return tensor, {"decode_ms": decode_ms, "preprocess_ms": _ms(start)}

    def _decode_preprocess_infer(self, image: Image.Image) -> tuple[np.ndarray, dict[str, float]]:
        """Decode, preprocess, then run the session on this image alone."""
        tensor, timings = self._decode_preprocess(image)
        start = time.perf_counter()
        with tracing.span("inference", **{"mlserve.batch_size": 1}):
            row = self.runner.run(tensor)[0]
        timings["inference_ms"] = _ms(start)
        return row, timings

    def _encode(self, row: np.ndarray, sha256: str) -> bytes:
        runner = self.runner
        return answers.encode_prediction(runner.config, runner.version, runner.digest, sha256, row)


def _deliver(job: Future, late: Callable) -> None:
    """Hand a finished job's prediction to `late`; a failed job has nothing to store."""
    if job.exception() is None:
        result = job.result()
        late(result[0] if isinstance(result, tuple) else result)
