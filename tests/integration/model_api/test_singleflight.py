"""A client that leaves while its cache lookup is under way (a real Redis, paused by a second
client so that the lookup is still waiting) is counted as dropped: no work was started for
it, and none will be."""

from __future__ import annotations

import asyncio

import redis
from prometheus_client import REGISTRY

from harness.redis_server import RedisServer
from model_api import metrics
from model_api.cache import PredictionCache
from model_api.singleflight import SingleFlight


async def test_leaving_during_the_lookup_counts_as_dropped(redis_server: RedisServer) -> None:
    cache = PredictionCache(redis_server.url, 60, 5.0, 1.0)
    await cache.start()
    counters = metrics.for_model("singleflight-test", "1")
    flight = SingleFlight(cache, lambda raw: True, 5000, counters)
    computed = []

    async def compute() -> tuple[bytes, dict[str, float]]:
        computed.append(1)
        return b"answer", {}

    def dropped() -> float:
        labels = {"model": "singleflight-test", "version": "1", "outcome": "dropped"}
        return REGISTRY.get_sample_value("mlserve_abandoned_total", labels) or 0.0

    dropped_before = dropped()
    try:
        # Redis holds every write (the claim is a script that may write) for 2 s.
        redis.Redis.from_url(redis_server.url).execute_command("CLIENT", "PAUSE", 2000, "WRITE")
        asked = asyncio.get_running_loop().create_task(flight.run("k", compute))
        await asyncio.sleep(0.2)
        assert not asked.done()
        asked.cancel()
        await asyncio.gather(asked, return_exceptions=True)
        assert dropped() - dropped_before == 1
        assert computed == []
    finally:
        redis.Redis.from_url(redis_server.url).execute_command("CLIENT", "UNPAUSE")
        await cache.close()
