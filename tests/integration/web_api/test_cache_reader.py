"""The gateway's own Redis reader against a real redis-server: right values for many
concurrent GETs on its one connection, clear failures, and recovery after a restart."""

from __future__ import annotations

import asyncio

import pytest
import redis

from harness.redis_server import RedisServer, free_port
from web_api.gateway.cache_reader import CacheReader, CacheReadError


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_gets_each_get_their_own_value(redis_server: RedisServer) -> None:
    store = redis.Redis.from_url(redis_server.url)
    values = {f"k{i}": f"value {i}".encode() * (1 + i % 50) for i in range(300)}
    store.mset(values)

    async def read_all() -> list[bytes | None]:
        reader = CacheReader(redis_server.url, timeout=2)
        try:
            keys = [*values, "no-such-key"]
            return await asyncio.gather(*(reader.get(key) for key in keys))
        finally:
            await reader.close()

    *found, missing = run(read_all())
    assert found == list(values.values()) and missing is None


def test_a_database_in_the_url_is_selected(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url.removesuffix("/0") + "/3").set("where", b"db 3")

    async def read() -> bytes | None:
        reader = CacheReader(redis_server.url.removesuffix("/0") + "/3", timeout=2)
        try:
            return await reader.get("where")
        finally:
            await reader.close()

    assert run(read()) == b"db 3"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:wrong-password@127.0.0.1:{port}/0",  # refused by AUTH
        "redis://127.0.0.1:{port}/0",  # no password: GET refused (NOAUTH)
        "redis://:x@127.0.0.1:{closed}/0",  # nothing listens
    ],
)
def test_failures_are_a_cache_read_error(redis_server: RedisServer, url: str) -> None:
    async def read() -> None:
        reader = CacheReader(url.format(port=redis_server.port, closed=free_port()), timeout=2)
        try:
            with pytest.raises(CacheReadError):
                await reader.get("anything")
        finally:
            await reader.close()

    run(read())


def test_it_reconnects_after_a_redis_restart(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("kept", b"yes")

    async def scenario() -> list[bytes | None | str]:
        reader = CacheReader(redis_server.url, timeout=2)
        seen: list[bytes | None | str] = [await reader.get("kept")]
        await asyncio.to_thread(redis_server.restart)  # the connection it holds is gone
        for _ in range(2):
            try:
                seen.append(await reader.get("kept"))
            except CacheReadError:
                seen.append("error")
        await reader.close()
        return seen

    first, *after = run(scenario())
    assert first == b"yes"
    assert after[-1] == b"yes"  # at most the first call after the restart fails
