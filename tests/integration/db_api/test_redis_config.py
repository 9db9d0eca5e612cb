"""db_api/redis.conf as the stack runs it: password, persistence, bounded memory."""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.redis_server import RedisServer


def test_a_password_is_required(redis_server: RedisServer) -> None:
    once = Retry(NoBackoff(), 0)  # redis-py retries a refused login 3 times, with back-off
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port, retry=once)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=redis_server.port, password="guess", retry=once).ping()
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
