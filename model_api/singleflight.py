"""Identical concurrent misses run the model once, across the whole deployment.

First level, in this process: later arrivals await the first one's future. Second level,
across workers and replicas: the first process to `SET NX PX` a short Redis lease infers;
the others poll the cache for its answer and, if none comes within the lease (say its
holder crashed), take the lease themselves or, past that bound, infer alone. With Redis
away every process infers for itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from model_api import metrics
from model_api.cache import PredictionCache

FIRST_POLL_SECONDS = 0.002
LONGEST_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Outcome:
    """The prediction's bytes, the stage timings of whoever inferred, and whether it was
    read from the cache (another process inferred it)."""

    prediction: bytes
    timings: dict[str, float]
    from_cache: bool


Compute = Callable[[], Awaitable[tuple[bytes, dict[str, float]]]]
Lookup = Callable[[str], Awaitable[bytes | None]]


class SingleFlight:
    def __init__(self, cache: PredictionCache, lookup: Lookup, lease_ms: int, model: str) -> None:
        self.cache = cache
        self.lookup = lookup
        self.lease_ms = lease_ms
        self._token = uuid.uuid4().hex
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}
        self._waits_here = metrics.SHARED.labels(model, "process")
        self._waits_elsewhere = metrics.SHARED.labels(model, "redis")

    async def run(self, key: str, compute: Compute) -> Outcome:
        """The prediction for `key`: computed here, or shared with whoever computes it."""
        shared = self._in_flight.get(key)
        if shared is not None:
            self._waits_here.inc()
            return await asyncio.shield(shared)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            outcome = await self._across_processes(key, compute)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unwaited future logs nothing
            raise
        finally:
            del self._in_flight[key]

    async def _across_processes(self, key: str, compute: Compute) -> Outcome:
        deadline = time.monotonic() + self.lease_ms / 1000
        poll = FIRST_POLL_SECONDS
        while True:
            lease = await self.cache.take_lease(key, self._token, self.lease_ms)
            if lease is not False or time.monotonic() > deadline:
                return await self._compute_and_store(key, compute, holds_lease=bool(lease))
            await asyncio.sleep(poll)
            poll = min(poll * 2, LONGEST_POLL_SECONDS)
            prediction = await self.lookup(key)
            if prediction is not None:
                self._waits_elsewhere.inc()
                return Outcome(prediction, {}, from_cache=True)

    async def _compute_and_store(self, key: str, compute: Compute, holds_lease: bool) -> Outcome:
        try:
            prediction, timings = await compute()
        except BaseException:
            if holds_lease:  # let the waiters try at once rather than wait out the lease
                await asyncio.shield(self.cache.release_lease(key))
            raise
        await self.cache.put(key, prediction, release_lease=holds_lease)
        return Outcome(prediction, timings, from_cache=False)
