"""model_api's PredictionCache against a real Redis with the stack's bounded memory."""

from __future__ import annotations

import asyncio

import redis

from harness.redis_server import RedisServer
from model_api.cache import CacheState, PredictionCache
from model_api.schemas import Prediction


def test_filling_far_past_maxmemory_evicts_without_errors(tmp_path) -> None:
    limit = 2 * 1024 * 1024
    server = RedisServer(tmp_path / "small", maxmemory=str(limit), appendonly="no").start()
    prediction = Prediction(
        model="mnist",
        version="1",
        digest="d" * 64,
        sha256="s" * 64,
        label="7",
        class_index=7,
        confidence=0.9,
        probabilities={str(d): 0.1 for d in range(10)},
    )
    written = 12_000  # about six times what fits

    async def fill() -> PredictionCache:
        cache = PredictionCache(server.url, 3600, timeout=2, retry_seconds=1)
        await cache.start()
        for i in range(written):
            await cache.put(f"mlserve:prediction:{i:064d}", prediction.model_dump_json().encode())
        await cache.close()
        return cache

    try:
        cache = asyncio.run(fill())
        info = redis.Redis.from_url(server.url).info()
        assert cache.errors == 0 and cache.state is CacheState.ok
        assert info["evicted_keys"] > 0
        assert redis.Redis.from_url(server.url).dbsize() < written
        assert info["used_memory"] <= limit * 1.05
    finally:
        server.stop()
