"""The reload listener stops when asked, whenever the ask lands (a real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from harness.redis_server import RedisServer
from model_api.reload_bus import ReloadBus

DELAYS = [0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.05]
"""Seconds after the listener starts: while it connects, subscribes, catches up, listens."""


async def no_refresh(name: str) -> str | None:
    return None


@pytest.mark.parametrize("delay", DELAYS)
async def test_close_ends_the_listener_wherever_the_cancel_lands(
    redis_server: RedisServer, delay: float
) -> None:
    bus = ReloadBus(redis_server.url, no_refresh, lambda: {"mnist": "d" * 64}, 1.0)
    bus._listener = asyncio.get_running_loop().create_task(bus._listen())
    await asyncio.sleep(delay)
    # Without the fix, redis-py swallows a cancel that lands while it connects, and the
    # listener waits for messages forever: close would hang.
    closing = asyncio.get_running_loop().create_task(bus.close())
    await asyncio.wait({closing}, timeout=5)
    if not closing.done():
        bus._listener.cancel()  # a second cancel does land: let the test end
        await closing
        pytest.fail("the reload listener ignored its cancellation: close() hung")
