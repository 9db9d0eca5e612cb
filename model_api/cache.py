"""The prediction cache in Redis: keyed by what was asked, tolerant of Redis being away.

While Redis is unreachable every call is skipped (predictions go on uncached), the
outage is logged once, and a background task pings until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from enum import StrEnum

import redis.asyncio as redis
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from model_api.schemas import AppType, Prediction

log = logging.getLogger("model_api")

KEY_PREFIX = "mlserve:prediction:"


class CacheState(StrEnum):
    ok = "ok"
    degraded = "degraded"
    disabled = "disabled"


def cache_key(app_type: AppType | str, model_name: str, model_version: str, image: bytes) -> str:
    """SHA-256 over app type, model name, model version and the exact image bytes.

    Each text part is length-prefixed, so no two different requests share a key.
    """
    digest = hashlib.sha256()
    for part in (str(app_type), model_name, model_version):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    digest.update(image)
    return KEY_PREFIX + digest.hexdigest()


class PredictionCache:
    """Get and put predictions as JSON; never raises because Redis is down."""

    def __init__(self, url: str, ttl_seconds: int, timeout: float, retry_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.retry_seconds = retry_seconds
        self.state = CacheState.disabled if not url else CacheState.degraded
        self.client: redis.Redis | None = None
        if url:
            self.client = redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                # One immediate retry on a fresh connection: after a quick Redis restart the
                # pooled connections are stale, and the retry makes the restart invisible.
                retry=Retry(NoBackoff(), retries=1),
                retry_on_error=[RedisConnectionError],
            )
        self._monitor: asyncio.Task | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def start(self) -> None:
        """Try Redis once and start the task that watches it."""
        if self.client is None:
            log.info("cache disabled (no redis_url)")
            return
        if await self._ping():
            self.state = CacheState.ok
            log.info("cache connected")
        else:
            log.warning("cache unavailable at start; serving uncached until Redis answers")
        self._monitor = asyncio.create_task(self._watch(), name="cache-monitor")

    async def close(self) -> None:
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self.client is not None:
            await self.client.aclose()

    async def _ping(self) -> bool:
        try:
            return bool(await self.client.ping())  # type: ignore[union-attr]
        except (RedisError, OSError):
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            if self.state is CacheState.degraded and await self._ping():
                self.state = CacheState.ok
                log.info("cache recovered: Redis answers again")

    def _mark_down(self, exc: BaseException) -> None:
        self.errors += 1
        if self.state is CacheState.ok:
            log.warning("cache unavailable (%s); serving uncached until Redis answers", exc)
            self.state = CacheState.degraded

    async def get(self, key: str) -> Prediction | None:
        """The cached prediction, or None on a miss, an outage or an unreadable value."""
        if self.state is not CacheState.ok:
            return None
        try:
            raw = await self.client.get(key)  # type: ignore[union-attr]
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return None
        if raw is None:
            self.misses += 1
            return None
        try:
            prediction = Prediction.model_validate_json(raw)
        except ValidationError:
            log.warning("ignoring an unreadable cache value under %s; it will be overwritten", key)
            self.misses += 1
            return None
        self.hits += 1
        return prediction

    async def put(self, key: str, prediction: Prediction) -> None:
        """Store a prediction with the TTL (one atomic SET); skipped while Redis is down."""
        if self.state is not CacheState.ok:
            return
        try:
            await self.client.set(  # type: ignore[union-attr]
                key, prediction.model_dump_json(), ex=self.ttl_seconds
            )
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
