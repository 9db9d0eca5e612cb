"""The one way MLServe's services open Redis: short timeouts, one quick retry.

A Redis that is slower than `timeout` counts as down (the services go on uncached); after a
quick Redis restart the pooled connections are stale, and one immediate retry on a fresh
connection makes the restart invisible.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

REDIS_DOWN = (RedisError, OSError, RuntimeError)
"""What a Redis call raises when Redis is away. uvloop adds RuntimeError ("the handler is
closed") when redis-py writes to a connection Redis dropped while it was being opened."""


def connect(url: str, timeout: float) -> redis.Redis:
    """A pooled async client (connections are made on first use)."""
    return redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=[RedisConnectionError],
    )
