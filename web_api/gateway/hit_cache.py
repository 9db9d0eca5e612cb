"""Repeated images answered at the door: the gateway reads model_api's prediction cache.

A cache hit through model_api costs two HTTP servers and a hop between them, most of a
hit's time (bench/README.md measures what answering at the door saved). The gateway computes the
same key model_api does (`mlserve_common.wire.cache_keys`: app type, model, model digest, the
image's SHA-256), asks Redis once, and answers a hit itself with the same JSON model_api
would give. Anything else (a miss, a corrupt or foreign value, Redis away) goes to
model_api, which owns the cache: it infers, writes, and keeps single-flight. The gateway
never writes.

The key needs the model's digest, which only model_api knows. The gateway learns it from
model_api's answers (every 200 carries it), and checks it with every lookup: one MGET reads
the stored answer and the digest model_api last loaded (`model_digest_key`). A hit is
answered only when the two digests agree; otherwise the request goes to model_api and the
gateway takes the new digest. A reload writes the new digest before its call answers, so
from then on no entry of the old model is answered here, and a digest the gateway has not
seen is never guessed.

A lookup that finds nothing costs every miss a Redis round trip, for nothing: model_api
looks the key up again anyway, as it claims it. So when `bypass_after` lookups in a row
found nothing (traffic of images never seen before, such as camera frames), the gateway
asks Redis for only one request in `SAMPLE_EVERY`, and asks for every one again as soon as
a repeat shows up: found by one of those lookups, or answered by model_api from its cache.
Nothing is lost by the bypass: a repeat it forwards is model_api's cache hit.
"""

from __future__ import annotations

import logging
import time

import orjson

from mlserve_common.wire import answer_json
from mlserve_common.wire.cache_keys import cache_key, image_sha256, model_digest_key
from mlserve_common.wire.redis_pipe import RedisPipe, RedisPipeError
from web_api.gateway import metrics

log = logging.getLogger("web_api")

SAMPLE_EVERY = 16
"""While bypassing, one request in this many is still looked up (to notice repeats)."""


class HitCache:
    """Read-only lookups in the prediction cache; never raises because Redis is away."""

    def __init__(
        self,
        url: str,
        timeout: float,
        retry_seconds: float,
        bypass_after: int = 0,
    ) -> None:
        """`bypass_after`: lookups in a row that found nothing before the bypass (0: never)."""
        self.client = RedisPipe(url, timeout) if url else None
        self.retry_seconds = retry_seconds
        self.bypass_after = bypass_after
        self._digests: dict[str, str] = {}
        self._down_until = 0.0
        self._misses_in_row = 0
        self._unsampled = 0

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    def digest_of(self, model: str) -> str | None:
        """The digest `model` last answered with, as far as the gateway knows."""
        return self._digests.get(model)

    @property
    def bypassing(self) -> bool:
        return 0 < self.bypass_after <= self._misses_in_row

    def learn(self, model: str, answer: bytes) -> None:
        """Note the digest in a 200 answer of model_api's for `model`, and whether it came
        from the cache (a repeat: look every request up again)."""
        try:
            value = orjson.loads(answer)
        except orjson.JSONDecodeError:
            return
        if isinstance(value, dict) and value.get("model") == model:
            digest = value.get("digest")
            if isinstance(digest, str):
                self._digests[model] = digest
            if value.get("cached") is True:
                self._misses_in_row = 0

    async def answer(self, app_type: str, model: str, image: bytes) -> bytes | None:
        """The answer for a cached prediction of these exact bytes, or None (ask model_api)."""
        digest = self._digests.get(model)
        if self.client is None or digest is None or not image:
            return None
        if time.monotonic() < self._down_until:
            metrics.LOOKUPS.labels(model, "skipped").inc()
            return None
        if self.bypassing:
            self._unsampled += 1
            if self._unsampled < SAMPLE_EVERY:
                metrics.LOOKUPS.labels(model, "bypassed").inc()
                return None
            self._unsampled = 0
        start = time.perf_counter()
        sha256 = image_sha256(image)
        key = cache_key(app_type, model, digest, sha256)
        try:
            current, raw = await self.client.call("MGET", model_digest_key(model), key)
        except RedisPipeError as exc:
            self._mark_down(exc)
            metrics.LOOKUPS.labels(model, "error").inc()
            return None
        lookup_ms = (time.perf_counter() - start) * 1000
        if self._down_until:
            self._down_until = 0.0
            log.info("cache readable from the gateway again")
        if current != digest.encode():  # reloaded since (or not yet written): ask model_api
            if current is not None:
                self._digests[model] = current.decode()
            metrics.LOOKUPS.labels(model, "stale").inc()
            return None
        if raw is None or not answer_json.is_prediction(raw, model, digest, None, sha256):
            self._misses_in_row += 1
            metrics.LOOKUPS.labels(model, "miss").inc()
            return None
        self._misses_in_row = 0
        metrics.LOOKUPS.labels(model, "hit").inc()
        total_ms = (time.perf_counter() - start) * 1000
        timings = {"cache_lookup_ms": lookup_ms, "total_ms": total_ms}
        return answer_json.answer(raw, True, app_type, timings)

    def _mark_down(self, exc: BaseException) -> None:
        """Leave Redis alone for `retry_seconds` (model_api answers meanwhile); say so once."""
        if self._down_until == 0.0:
            log.warning(
                "cache unreadable from the gateway (%s); forwarding every request to model_api "
                "and trying again every %.0f s",
                exc,
                self.retry_seconds,
            )
        self._down_until = time.monotonic() + self.retry_seconds
