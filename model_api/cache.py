"""The prediction cache in Redis: keyed by what was asked, tolerant of Redis being away.

Values are the prediction's final JSON bytes, so a hit is served without parsing or
re-encoding them. Short leases beside the values let one worker or replica infer while
identical misses elsewhere wait for its answer (single-flight across processes).

While Redis is unreachable every call is skipped (predictions go on uncached), the
outage is logged once, and a background task pings until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum

from mlserve_common.wire.cache_keys import KEY_PREFIX
from mlserve_common.wire.redis_pipe import RedisPipe, RedisPipeError
from model_api import metrics

log = logging.getLogger("model_api")

LEASE_PREFIX = "mlserve:lease:"


class CacheState(StrEnum):
    ok = "ok"
    degraded = "degraded"
    disabled = "disabled"


_CLAIM_LUA = """
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 1} end
return {0, 0}
"""
# Redis names a script by its SHA-1 (EVALSHA): an identifier, not a security measure.
_CLAIM_SHA = hashlib.sha1(_CLAIM_LUA.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What `claim` found: the stored value, or whether this process now holds the lease
    (True), another one does (False), or Redis is away (None: act alone)."""

    value: bytes | None
    lease: bool | None


def _lease_key(key: str) -> str:
    return LEASE_PREFIX + key.removeprefix(KEY_PREFIX)


class PredictionCache:
    """Get and put predictions as JSON bytes; never raises because Redis is down."""

    def __init__(self, url: str, ttl_seconds: int, timeout: float, retry_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.retry_seconds = retry_seconds
        self.state = CacheState.disabled if not url else CacheState.degraded
        # One pipelined connection per worker (see mlserve_common/wire/redis_pipe.py, and why).
        self.client = RedisPipe(url, timeout) if url else None
        self._monitor: asyncio.Task | None = None
        self.errors = 0

    async def start(self) -> None:
        """Try Redis once and start the task that watches it."""
        if self.client is None:
            log.info("cache disabled (no redis_url)")
            return
        if await self._ping():
            self._set_state(CacheState.ok)
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
            await self.client.close()

    async def _ping(self) -> bool:
        try:
            return await self.client.call("PING") == b"PONG"  # type: ignore[union-attr]
        except RedisPipeError:
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            if self.state is CacheState.degraded and await self._ping():
                self._set_state(CacheState.ok)
                log.info("cache recovered: Redis answers again")

    def _mark_down(self, exc: BaseException) -> None:
        self.errors += 1
        metrics.CACHE_ERRORS.inc()
        if self.state is CacheState.ok:
            log.warning("cache unavailable (%s); serving uncached until Redis answers", exc)
            self._set_state(CacheState.degraded)

    @property
    def up(self) -> bool:
        return self.state is CacheState.ok

    def _set_state(self, state: CacheState) -> None:
        self.state = state
        metrics.CACHE_UP.set(int(state is CacheState.ok))

    async def get(self, key: str) -> bytes | None:
        """The stored value, or None (also while Redis is down)."""
        if self.state is not CacheState.ok:
            return None
        try:
            return await self.client.call("GET", key)  # type: ignore[union-attr]
        except RedisPipeError as exc:
            self._mark_down(exc)
            return None

    async def put(self, key: str, value: bytes, release_lease: bool = False) -> None:
        """Store a prediction with the TTL; with `release_lease`, drop the lease in the same
        round trip (nothing is left behind). Skipped while Redis is down."""
        if self.state is not CacheState.ok:
            return
        commands = [("SET", key, value, "EX", str(self.ttl_seconds))]
        if release_lease:
            commands.append(("DEL", _lease_key(key)))
        try:
            await self.client.pipeline(*commands)  # type: ignore[union-attr]
        except RedisPipeError as exc:
            self._mark_down(exc)

    async def claim(self, key: str, token: str, ttl_ms: int) -> Claim:
        """In one atomic step: the stored value, or else the lease to compute it.

        Atomic, so a value stored (and its lease dropped) between a miss and a lease
        request can never let a second process compute it again.
        """
        if self.state is not CacheState.ok:
            return Claim(None, None)
        keys_and_args = ("2", key, _lease_key(key), token, str(ttl_ms))
        try:
            found, payload = await self._claim_script(keys_and_args)
        except RedisPipeError as exc:
            self._mark_down(exc)
            return Claim(None, None)
        return Claim(payload, None) if found else Claim(None, bool(payload))

    async def release_lease(self, key: str) -> None:
        """Give the lease up early (after a failure), so that waiters try at once."""
        if self.state is not CacheState.ok:
            return
        try:
            await self.client.call("DEL", _lease_key(key))  # type: ignore[union-attr]
        except RedisPipeError as exc:
            self._mark_down(exc)

    async def _claim_script(self, keys_and_args: tuple[str, ...]) -> list:
        """The claim script by its digest; sent whole once Redis no longer has it (a restart)."""
        try:
            return await self.client.call("EVALSHA", _CLAIM_SHA, *keys_and_args)  # type: ignore
        except RedisPipeError as exc:
            if not (exc.reply or "").startswith("NOSCRIPT"):
                raise
            return await self.client.call("EVAL", _CLAIM_LUA, *keys_and_args)  # type: ignore
