"""The cache lookup, and identical concurrent misses running the model once across the
whole deployment.

First level, in this process: later arrivals await the first one's future, without asking
Redis. Second level, across workers and replicas: one atomic Redis step (`claim`) returns
the stored answer or, on a miss, gives a short lease to the first process that asks; the
others poll for its answer and, if none comes within the lease (say its holder crashed),
take the lease themselves or, past that bound, infer alone. With Redis away every process
infers for itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from mlserve_common.runtime import tracing
from model_api.cache import Claim, PredictionCache
from model_api.metrics import ModelMetrics

FIRST_POLL_SECONDS = 0.002
LONGEST_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Outcome:
    """The prediction's bytes, the stage timings of whoever inferred, and where it came from:
    the cache, this request's inference, or another process's inference read from Redis."""

    prediction: bytes
    timings: dict[str, float]
    source: Literal["cache", "computed", "redis"]

    @property
    def from_cache(self) -> bool:
        return self.source != "computed"


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


Compute = Callable[[], Awaitable[tuple[bytes, dict[str, float]]]]
Readable = Callable[[bytes], bool]


class SingleFlight:
    def __init__(
        self, cache: PredictionCache, readable: Readable, lease_ms: int, counters: ModelMetrics
    ) -> None:
        self.cache = cache
        self.readable = readable
        self.lease_ms = lease_ms
        self._token = uuid.uuid4().hex
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}
        self._waits_here = counters.waits_here
        self._waits_elsewhere = counters.waits_elsewhere
        self._dropped = counters.dropped

    async def run(self, key: str, compute: Compute) -> Outcome:
        """The prediction for `key`: from the cache, computed here, or shared."""
        while (shared := self._in_flight.get(key)) is not None:
            # Asked in this process right now: no second trip to Redis.
            self._waits_here.inc()
            try:
                with tracing.span("single-flight wait", **{"mlserve.level": "process"}):
                    return await asyncio.shield(shared)
            except asyncio.CancelledError:
                if not shared.cancelled() or _being_cancelled():
                    raise
                # The first asker's client left and its work was dropped: ask again.
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future  # before any await: later arrivals must find it
        try:
            outcome = await self._look_up_or_compute(key, compute)
            future.set_result(outcome)
            return outcome
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unwaited future logs nothing
            raise
        finally:
            del self._in_flight[key]

    async def _look_up_or_compute(self, key: str, compute: Compute) -> Outcome:
        start = time.perf_counter()
        try:
            with tracing.span("cache lookup"):
                claim = await self._claim(key)
                hit = claim.value is not None and self.readable(claim.value)
                tracing.set_attributes(**{"mlserve.cache": "hit" if hit else "miss"})
        except asyncio.CancelledError:
            self._dropped.inc()  # its client left before any work started: none will
            raise
        lookup = {"cache_lookup_ms": (time.perf_counter() - start) * 1000}
        if hit:
            return Outcome(claim.value, lookup, "cache")
        found = await self._lead_or_wait(key, compute, claim)
        return Outcome(found.prediction, {**found.timings, **lookup}, found.source)

    async def _claim(self, key: str) -> Claim:
        return await self.cache.claim(key, self._token, self.lease_ms)

    async def _lead_or_wait(self, key: str, compute: Compute, claim: Claim) -> Outcome:
        deadline = time.monotonic() + self.lease_ms / 1000
        poll = FIRST_POLL_SECONDS
        waited = None  # when this request began to wait for another process's inference
        while True:
            if claim.value is not None:  # stored but foreign or corrupt: compute, overwrite
                return await self._compute_and_store(key, compute, holds_lease=False)
            if claim.lease is not False or time.monotonic() > deadline:
                _traced_wait(waited)
                return await self._compute_and_store(key, compute, holds_lease=bool(claim.lease))
            waited = waited or time.perf_counter()
            await asyncio.sleep(poll)
            poll = min(poll * 2, LONGEST_POLL_SECONDS)
            claim = await self._claim(key)
            if claim.value is not None and self.readable(claim.value):
                self._waits_elsewhere.inc()
                _traced_wait(waited)
                return Outcome(claim.value, {}, "redis")

    async def _compute_and_store(self, key: str, compute: Compute, holds_lease: bool) -> Outcome:
        try:
            prediction, timings = await compute()
        except BaseException:
            if holds_lease:  # let the waiters try at once rather than wait out the lease
                await asyncio.shield(self.cache.release_lease(key))
            raise
        with tracing.span("cache write"):
            await self.cache.put(key, prediction, release_lease=holds_lease)
        return Outcome(prediction, timings, "computed")


def _traced_wait(since: float | None) -> None:
    """The span of a wait for another worker's or replica's inference, if there was one."""
    if since is not None:
        tracing.record(
            "single-flight wait", since, time.perf_counter(), **{"mlserve.level": "redis"}
        )
