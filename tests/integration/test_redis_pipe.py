"""The services' lean Redis client against a real redis-server: right replies for many
concurrent commands on its one connection, pipelines, clear failures, and recovery after a
restart."""

from __future__ import annotations

import asyncio

import pytest
import redis

from harness.redis_server import RedisServer, free_port
from mlserve_common.wire.redis_pipe import RedisPipe, RedisPipeError


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_gets_each_get_their_own_value(redis_server: RedisServer) -> None:
    store = redis.Redis.from_url(redis_server.url)
    values = {f"k{i}": f"value {i}".encode() * (1 + i % 50) for i in range(300)}
    store.mset(values)

    async def ask_all() -> list[bytes | None]:
        pipe = RedisPipe(redis_server.url, timeout=2)
        try:
            keys = [*values, "no-such-key"]
            return await asyncio.gather(*(pipe.call("GET", key) for key in keys))
        finally:
            await pipe.close()

    *found, missing = run(ask_all())
    assert found == list(values.values()) and missing is None


def test_a_database_in_the_url_is_selected(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url.removesuffix("/0") + "/3").set("where", b"db 3")

    async def read() -> bytes | None:
        pipe = RedisPipe(redis_server.url.removesuffix("/0") + "/3", timeout=2)
        try:
            return await pipe.call("GET", "where")
        finally:
            await pipe.close()

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
        pipe = RedisPipe(url.format(port=redis_server.port, closed=free_port()), timeout=2)
        try:
            with pytest.raises(RedisPipeError):
                await pipe.call("GET", "anything")
        finally:
            await pipe.close()

    run(read())


def test_it_reconnects_after_a_redis_restart(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("kept", b"yes")

    async def scenario() -> list[bytes | None | str]:
        pipe = RedisPipe(redis_server.url, timeout=2)
        seen: list[bytes | None | str] = [await pipe.call("GET", "kept")]
        await asyncio.to_thread(redis_server.restart)  # the connection it holds is gone
        for _ in range(2):
            try:
                seen.append(await pipe.call("GET", "kept"))
            except RedisPipeError:
                seen.append("error")
        await pipe.close()
        return seen

    first, *after = run(scenario())
    assert first == b"yes"
    assert after[-1] == b"yes"  # at most the first call after the restart fails


def test_a_pipeline_answers_in_order_and_an_error_reply_keeps_the_connection_in_step(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> tuple[list[object], str | None, list[object]]:
        pipe = RedisPipe(redis_server.url, timeout=2)
        try:
            first = await pipe.pipeline(
                ("SET", "p", b"one", "EX", "60"), ("GET", "p"), ("DEL", "p"), ("GET", "p")
            )
            with pytest.raises(RedisPipeError) as refused:
                await pipe.pipeline(("SET", "q", b"x"), ("INCR", "q"), ("GET", "q"))
            after = await pipe.pipeline(("GET", "q"), ("EVAL", "return {1, ARGV[1]}", "0", "z"))
            return first, refused.value.reply, after
        finally:
            await pipe.close()

    first, reply, after = run(scenario())
    assert first == [b"OK", b"one", 1, None]
    assert reply is not None and "not an integer" in reply
    assert after == [b"x", [1, b"z"]]


def test_a_reply_that_comes_after_its_caller_gave_up_goes_to_nobody(
    redis_server: RedisServer,
) -> None:
    redis.Redis.from_url(redis_server.url).set("here", b"value")

    async def scenario() -> list[object]:
        pipe = RedisPipe(redis_server.url, timeout=0.3)
        try:
            with pytest.raises(RedisPipeError, match="did not answer"):
                await pipe.call("BLPOP", "empty-list", "1")  # Redis answers nil after 1 s
            await asyncio.sleep(1.2)  # the late nil has come by now
            return await asyncio.gather(*(pipe.call("GET", "here") for _ in range(3)))
        finally:
            await pipe.close()

    assert run(scenario()) == [b"value"] * 3
