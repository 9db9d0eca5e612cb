"""Reloads that reach every worker process and every replica, through the Redis they share.

A load call reloads the model in the worker that received it, writes the model's new digest
under `model_digest_key` (the gateway checks it with every cache read) and publishes the
reload on `CHANNEL`. Every model_api worker, of this replica and of any other on the same
Redis, listens there: it reloads the model from its folder when what is on disk differs from
what it serves, and answers on the call's own reply channel. Redis says how many listeners
received the message, so the load call answers 200 only once every one of them has answered:
after that, no worker anywhere serves the old model. A listener that loses its connection
catches up when it is back: it compares each served model with the digest in Redis.

redis-py carries the subscription (a subscribed connection can do nothing else, so it is not
the pipelined connection of the hot path, `mlserve_common.wire.redis_pipe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from mlserve_common.wire.cache_keys import model_digest_key

log = logging.getLogger("model_api")

CHANNEL = "mlserve:models:reload"
REPLY_PREFIX = "mlserve:models:reloaded:"
RETRY_SECONDS = 0.5
KEEP_SECONDS = 10.0
"""How often each worker writes its models' digests back if Redis lost them (an eviction):
until then the gateway sends repeats on to model_api, which is slower, never wrong."""

Refresh = Callable[[str], Awaitable[str | None]]
"""Reload a model here if its folder changed; the digest it serves after, None if not served."""
Current = Callable[[], dict[str, str]]
"""The digest each model served here answers `/predict` with, by name."""


@dataclass(frozen=True)
class Followed:
    """How a reload was followed: listeners that received it, and the digests they reported
    (None: a listener that does not serve the model)."""

    listeners: int
    digests: list[str | None]


class ReloadNotFollowedError(Exception):
    """Some listeners did not confirm a reload in time."""

    def __init__(self, listeners: int, confirmed: int) -> None:
        super().__init__(f"{confirmed} of {listeners} model_api workers confirmed the reload")
        self.listeners, self.confirmed = listeners, confirmed


class ReloadBus:
    """One worker's end of the reload channel: it announces reloads and follows them."""

    def __init__(self, url: str, refresh: Refresh, current: Current, timeout: float) -> None:
        """`timeout`: the longest wait for one Redis command (the subscription itself waits
        without a limit, with a health check now and then)."""
        self.client = (
            redis.from_url(url, socket_connect_timeout=timeout, health_check_interval=30)
            if url
            else None
        )
        self.refresh = refresh
        self.current = current
        self.timeout = timeout
        self._listener: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def start(self) -> None:
        """Publish the digests served here, and follow reloads from now on."""
        if self.client is None:
            return
        await self.publish_digests(self.current())
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="reloads")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self._subscribed.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.client is not None:
            await self.client.aclose()

    async def publish_digests(self, digests: dict[str, str], only_missing: bool = False) -> None:
        """Write each model's digest where the gateway and the other replicas read it
        (`only_missing`: only where Redis has none)."""
        if self.client is None or not digests:
            return
        mapping = {model_digest_key(n): d for n, d in digests.items()}
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, digest in mapping.items():
                        pipe.set(key, digest, nx=only_missing)
                    await pipe.execute()
        except (RedisError, TimeoutError) as exc:
            log.warning("could not publish the model digests to Redis: %s", exc)

    async def announce(self, name: str, digest: str, wait: float) -> Followed:
        """Tell every listener that `name` was reloaded (now `digest`) and wait, up to
        `wait` seconds, until each has followed; `ReloadNotFollowedError` if some did not,
        `RedisError` when Redis cannot be asked."""
        assert self.client is not None
        reply = REPLY_PREFIX + uuid.uuid4().hex
        async with self.client.pubsub() as replies:
            message = json.dumps({"name": name, "digest": digest, "reply": reply})
            try:
                async with asyncio.timeout(self.timeout):
                    await replies.subscribe(reply)
                    await self.client.set(model_digest_key(name), digest)
                    listeners = int(await self.client.publish(CHANNEL, message))
            except TimeoutError:
                raise RedisError("Redis did not answer in time") from None
            digests: list[str | None] = []
            try:
                async with asyncio.timeout(wait):
                    while len(digests) < listeners:
                        got = await replies.get_message(ignore_subscribe_messages=True, timeout=1)
                        if got is not None:
                            digests.append(json.loads(got["data"]).get("digest"))
            except TimeoutError:
                raise ReloadNotFollowedError(listeners, len(digests)) from None
        return Followed(listeners, digests)

    async def _listen(self) -> None:
        """Follow reloads for as long as the worker runs, reconnecting when Redis goes."""
        assert self.client is not None
        while True:
            try:
                async with self.client.pubsub() as channel:
                    await channel.subscribe(CHANNEL)
                    self._subscribed.set()
                    await self._catch_up()
                    kept = time.monotonic()
                    while True:
                        raise_if_cancelled()
                        message = await channel.get_message(
                            ignore_subscribe_messages=True, timeout=KEEP_SECONDS
                        )
                        if message is not None:
                            await self._follow(message["data"])
                        if time.monotonic() - kept >= KEEP_SECONDS:
                            await self.publish_digests(self.current(), only_missing=True)
                            kept = time.monotonic()
            except (RedisError, OSError, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("reload channel lost (%s); trying again", exc)
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self, data: bytes) -> None:
        try:
            request = json.loads(data)
            name, reply = str(request["name"]), str(request["reply"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed reload message: %r", data[:200])
            return
        digest = await self.refresh(name)
        if digest is not None and digest != request.get("digest"):
            log.warning(
                "model %s reloaded elsewhere as %s, but its folder here gives %s",
                name,
                str(request.get("digest"))[:12],
                digest[:12],
            )
        async with asyncio.timeout(self.timeout):
            await self.client.publish(reply, json.dumps({"digest": digest}))  # type: ignore

    async def _catch_up(self) -> None:
        """After a (re)connection: reload any served model whose digest in Redis is not the
        one served here (a reload announced while this worker was not listening)."""
        served = self.current()
        if not served:
            return
        async with asyncio.timeout(self.timeout):
            stored = await self.client.mget([model_digest_key(n) for n in served])  # type: ignore
        for (name, digest), found in zip(served.items(), stored, strict=True):
            if found is not None and found.decode() != digest:
                await self.refresh(name)


def raise_if_cancelled() -> None:
    """Raise the cancellation of the running task if one was asked for. redis-py can swallow
    a cancellation that lands while it (re)connects or subscribes: the task then stays
    `cancelling()` with no CancelledError to come, and a `get_message` loop never ends."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
