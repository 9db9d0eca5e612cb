"""db_api/redis.conf as the stack runs it: password, persistence, bounded memory."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from model_api.cache import CacheState, PredictionCache
from model_api.schemas import Prediction
from tests.support.redis_server import RedisServer


def test_a_password_is_required(redis_server: RedisServer) -> None:
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=redis_server.port, password="guess").ping()
    assert redis.Redis.from_url(redis_server.url).ping()


def test_config_and_flushall_are_disabled(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    for command in (("CONFIG", "GET", "*"), ("FLUSHALL",), ("DEBUG", "SLEEP", "0")):
        with pytest.raises(redis.ResponseError):
            client.execute_command(*command)


def test_persistence_and_eviction_are_configured(redis_server: RedisServer) -> None:
    info = redis.Redis.from_url(redis_server.url).info()
    assert info["aof_enabled"] == 1
    assert info["maxmemory"] == 256 * 1024 * 1024
    assert info["maxmemory_policy"] == "allkeys-lru"


def test_writes_survive_a_crash_after_a_second(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("mlserve:test", "kept")
    time.sleep(1.5)  # appendfsync everysec
    redis_server.stop(kill=True)
    redis_server.start()
    assert redis.Redis.from_url(redis_server.url).get("mlserve:test") == b"kept"


def test_writes_survive_a_clean_restart(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("mlserve:test", "kept")
    redis_server.restart()
    assert redis.Redis.from_url(redis_server.url).get("mlserve:test") == b"kept"


def test_filling_far_past_maxmemory_evicts_without_errors(tmp_path) -> None:
    limit = 2 * 1024 * 1024
    server = RedisServer(tmp_path / "small", maxmemory=str(limit), appendonly="no").start()
    prediction = Prediction(
        model="mnist",
        version="v" * 64,
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
