"""Dynamic batching: images that arrive together share one session run.

A batch runs when it holds `max_batch_size` images, or when its oldest image has waited
`max_queue_delay_ms`, or at once when no other image is on its way (still being decoded):
a lone request never waits for company that is not coming. While one batch runs, the next
one fills. Every image gets its own answer: a failed run is retried image by image, so one
bad input never fails the others.
A full queue refuses at once (503 with Retry-After) instead of letting clients hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from mlserve_common.runtime import tracing
from mlserve_common.runtime.errors import log_unexpected
from model_api.errors import OverloadedError
from model_api.inference import ModelRunner
from model_api.model_config import BatchingConfig


class Announcement:
    """An image on its way to a batcher; it counts as on the way until `arrive()`."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher: Batcher | None = batcher
        batcher._on_the_way += 1

    def arrive(self) -> None:
        if self._batcher is not None:
            self._batcher._one_fewer_on_the_way()
            self._batcher = None


@dataclass
class _Waiting:
    tensor: np.ndarray
    future: asyncio.Future[np.ndarray]
    since: float = field(default_factory=time.perf_counter)
    taken: bool = False  # in a batch that is running
    late: Callable[[np.ndarray], None] | None = None  # its client left while it ran
    taken_at: float = 0.0
    context: contextvars.Context | None = field(default_factory=tracing.capture)
    """Its request's context, with tracing on: the batch's spans go into its trace."""


class Batcher:
    """Collects (1, C, H, W) tensors into batches and runs them on `runner`, one at a time."""

    def __init__(self, runner: ModelRunner, config: BatchingConfig) -> None:
        self.runner = runner
        self.config = config
        self._delay = config.max_queue_delay_ms / 1000
        self._queue: deque[_Waiting] = deque()
        self._arrived = asyncio.Event()
        self._ready = asyncio.Event()  # set: stop waiting for company (full, or none coming)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self._depth = runner.metrics.queue_depth
        self._rejected = runner.metrics.rejected
        self._dropped = runner.metrics.dropped
        self._finished = runner.metrics.finished
        self._queue_seconds = runner.metrics.queue_seconds
        self._task: asyncio.Task | None = None
        self._on_the_way = 0
        self._busy = False  # a batch is running

    @contextlib.contextmanager
    def expecting(self) -> Iterator[Announcement]:
        """Announce an image that is still being decoded: batches wait (up to the delay) for
        announced images. Pass the announcement to `infer`; leaving the block without that
        (a decode error) withdraws it."""
        announcement = Announcement(self)
        try:
            yield announcement
        finally:
            announcement.arrive()

    def _one_fewer_on_the_way(self) -> None:
        self._on_the_way -= 1
        if self._on_the_way == 0:
            self._ready.set()  # nobody else is coming: stop waiting

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        while self._queue:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def infer(
        self,
        tensor: np.ndarray,
        announcement: Announcement | None = None,
        late: Callable[[np.ndarray], None] | None = None,
        inline: bool = False,
    ) -> np.ndarray:
        """This image's row of class probabilities, computed in some batch. If the caller is
        cancelled while it waits, the image leaves the queue; while its batch runs, the row
        goes to `late` instead. `inline` (a small input): when there is nobody to batch
        with and no batch running, it runs alone at once, on the event loop."""
        if len(self._queue) >= self.config.max_queue_size:
            self._rejected.inc()
            raise OverloadedError(
                f"model {self.runner.config.name!r} has {len(self._queue)} images queued, "
                "its limit; retry in a moment"
            )
        if announcement is not None:
            announcement.arrive()
        if inline and not (self._queue or self._busy or self._on_the_way):
            with tracing.span("inference", **{"mlserve.batch_size": 1}):
                return self.runner.run(tensor)[0]  # a batch of one: no wait, no thread hop
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(tensor, future)
        self._queue.append(waiting)
        self._depth.inc()
        self._arrived.set()
        if len(self._queue) >= self.config.max_batch_size:
            self._ready.set()
        try:
            return await future  # cancelling the caller cancels it at once: `_take` drops it
        except asyncio.CancelledError:
            if waiting.taken:
                waiting.late = late
            (self._finished if waiting.taken else self._dropped).inc()
            raise

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = self._queue[0].since + self._delay - time.perf_counter()
            if len(self._queue) < self.config.max_batch_size and wait > 0 and self._on_the_way:
                self._ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), wait)
            batch = self._take()
            if batch:
                self._busy = True
                try:
                    await self._run_batch(batch)
                finally:
                    self._busy = False

    def _take(self) -> list[_Waiting]:
        """Up to max_batch_size waiting images; those whose client gave up are dropped."""
        batch: list[_Waiting] = []
        now = time.perf_counter()
        while self._queue and len(batch) < self.config.max_batch_size:
            waiting = self._queue.popleft()
            self._depth.dec()
            if not waiting.future.done():
                waiting.taken, waiting.taken_at = True, now
                batch.append(waiting)
                self._queue_seconds.observe(now - waiting.since)
        return batch

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            tensors = np.concatenate([w.tensor for w in batch])
            rows = await loop.run_in_executor(self._executor, self.runner.run, tensors)
        except Exception as exc:  # each image gets its own answer, or its own error
            log_unexpected(exc, f"a batch of {len(batch)}, run again image by image")
            for waiting in batch:
                await self._run_one(waiting)
            return
        if tracing.enabled:
            _trace(batch, started, time.perf_counter())
        for waiting, row in zip(batch, rows, strict=True):
            _settle(waiting, row)

    async def _run_one(self, waiting: _Waiting) -> None:
        loop = asyncio.get_running_loop()
        try:
            (row,) = await loop.run_in_executor(self._executor, self.runner.run, waiting.tensor)
        except Exception as exc:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            return
        _settle(waiting, row)


def _trace(batch: list[_Waiting], started: float, ended: float) -> None:
    """Each request's spans of the batch it was in: its wait in the queue, and the run."""
    size = {"mlserve.batch_size": len(batch)}
    for waiting in batch:
        if waiting.context is not None:
            waiting.context.run(tracing.record, "queue", waiting.since, waiting.taken_at)
            waiting.context.run(tracing.record, "inference", started, ended, **size)


def _settle(waiting: _Waiting, row: np.ndarray) -> None:
    """The row to its request, or, if the client left while it ran, to the cache."""
    if waiting.late is not None:
        waiting.late(row)
    elif not waiting.future.done():
        waiting.future.set_result(row)
