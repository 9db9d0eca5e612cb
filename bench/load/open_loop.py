"""Open-loop load on the raw client's pool: request `i` is due at `start + i / rate`, whatever
the answers do. Past `max_in_flight` unanswered requests a due one is not sent (`NOT_SENT`);
after the last send the stragglers get the timeout and `drain_s` more, then are abandoned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bench.load.client import ERRORS, Pool

MAX_IN_FLIGHT = 400
DRAIN_S = 15.0
NOT_SENT = "not sent: too many in flight"
Item = TypeVar("Item")


@dataclass(frozen=True)
class Outcome:
    """One scheduled request; seconds: `sent` from the start, `lag` of its task behind the
    schedule (the generator keeping up), `latency` from its body being ready to the answer."""

    sent: float
    lag: float
    latency: float
    status: int | None  # None: no answer, see `error` (a connection error, a timeout, NOT_SENT)
    body: bytes
    error: str | None


async def send(pool: Pool, body: bytes) -> tuple[int | None, bytes, str | None]:
    """(status, body, error) of one POST; connection errors and timeouts become `error`."""
    try:
        status, answer = await pool.post(body)
    except ERRORS as exc:
        return None, b"", f"{type(exc).__name__}: {exc}"[:200]
    return status, answer, None


async def run_open_loop(
    pool: Pool,
    start: float,
    rate: float,
    duration: float,
    draw: Callable[[], Item],
    body: Callable[[Item], Awaitable[bytes]],
    record: Callable[[Item, Outcome], None],
    max_in_flight: int = MAX_IN_FLIGHT,
    drain_s: float = DRAIN_S,
) -> int:
    """`rate * duration` requests from `start` (monotonic): `draw()` picks each when it is
    due, `body(item)` makes its bytes in its own task, `record(item, outcome)` takes every
    outcome. Returns how many were abandoned."""

    async def one(item: Item, scheduled: float) -> None:
        lag = time.monotonic() - scheduled
        payload = await body(item)
        began = time.monotonic()
        status, answer, error = await send(pool, payload)
        latency = time.monotonic() - began
        record(item, Outcome(scheduled - start, lag, latency, status, answer, error))

    in_flight: set[asyncio.Task] = set()
    for i in range(int(rate * duration)):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        item = draw()
        if len(in_flight) >= max_in_flight:
            record(item, Outcome(i / rate, 0.0, 0.0, None, b"", NOT_SENT))
            continue
        task = asyncio.create_task(one(item, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=pool.timeout + drain_s)
    abandoned = len(in_flight)
    for task in in_flight:
        task.cancel()
    await asyncio.gather(*in_flight, return_exceptions=True)
    return abandoned
