"""Open-loop load for the soak: requests leave on a fixed schedule, whatever the answers do.

Each result is judged against its probe's expected answer; RSS of the services is sampled
alongside, and a progress line is printed every `PROGRESS_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import psutil
import redis.asyncio as redis
from redis.exceptions import RedisError

from bench.soak_mix import Probe, RequestMix

PROGRESS_SECONDS = 10.0
RSS_SECONDS = 2.0
MAX_IN_FLIGHT = 400
"""Past this many unanswered requests a scheduled one is not sent and counts as unexpected."""
DRAIN_SECONDS = 15.0
"""After the last send, how long to wait for the stragglers (beyond the request timeout)."""


@dataclass
class Result:
    """One request as seen by the client; `sent` and `lag` are seconds from the start."""

    kind: str
    name: str
    sent: float
    lag: float  # how late the request's task began versus its schedule (the generator keeping up)
    latency: float
    status: int | None
    cached: bool | None
    unexpected: str | None  # why the answer was wrong; None when it was right


@dataclass
class SoakLog:
    """Everything measured during the run, appended to as it happens."""

    results: list[Result] = field(default_factory=list)
    rss: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (t, {service: bytes})
    cache: list[tuple[float, int, int]] = field(default_factory=list)  # (t, keys, used_memory)
    abandoned: int = 0  # still unanswered when the drain ended


def judge(
    probe: Probe, status: int | None, payload: bytes, error: str | None
) -> tuple[str | None, bool | None]:
    """(why the answer is wrong or None, the `cached` flag when there is one)."""
    if error:
        return error, None
    if status != probe.expect_status:
        return f"status {status} (expected {probe.expect_status}): {payload[:120]!r}", None
    try:
        answer = json.loads(payload)
    except ValueError:
        return f"status {status} with a body that is not JSON: {payload[:120]!r}", None
    if probe.expect_status != 200:
        return (
            None if "error" in answer else f"4xx without an error field: {payload[:120]!r}"
        ), None
    cached = answer.get("cached")
    if probe.expect_label is not None and str(answer.get("label")) != probe.expect_label:
        return f"label {answer.get('label')!r} (expected {probe.expect_label!r})", cached
    return None, cached


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int | None, bytes, str | None]:
    """(status, body, error name) of one POST; connection errors and timeouts become `error`."""
    try:
        async with session.post(
            url, data=body, headers={"content-type": "application/octet-stream"}
        ) as response:
            return response.status, await response.read(), None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, b"", f"{type(exc).__name__}: {exc}"[:200]


async def send(
    session: aiohttp.ClientSession,
    url: str,
    probe: Probe,
    scheduled: float,
    start: float,
    log: SoakLog,
) -> None:
    lag = time.monotonic() - scheduled
    body = probe.body
    if probe.source is not None:  # a miss: encode its fresh image in a thread, off the loop
        body = await asyncio.to_thread(probe.source.mutated, probe.serial)
    began = time.monotonic()
    status, payload, error = await post(session, url, body)
    latency = time.monotonic() - began
    unexpected, cached = judge(probe, status, payload, error)
    log.results.append(
        Result(probe.kind, probe.name, scheduled - start, lag, latency, status, cached, unexpected)
    )


async def pilot(
    session: aiohttp.ClientSession, url: str, mix: RequestMix, per_source: int = 3
) -> dict[str, list[str]]:
    """Check that mutated samples keep their label; stop checking labels of sources that don't."""
    seen: dict[str, list[str]] = {}
    for source in mix.miss_sources:
        for _ in range(per_source):
            probe = mix.miss(source)
            status, payload, error = await post(session, url, source.mutated(probe.serial))
            label = str(json.loads(payload).get("label")) if status == 200 else f"{status} {error}"
            seen.setdefault(source.name, []).append(label)
        source.label_checked = all(label == source.label for label in seen[source.name])
    return seen


def read_rss(pid: int) -> int:
    """VmRSS of `pid` in bytes (0 once the process is gone)."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


async def cache_size(client: redis.Redis) -> tuple[int, int]:
    """(keys, used_memory bytes) of Redis; (-1, -1) when it does not answer."""
    try:
        memory = await client.info("memory")
        return await client.dbsize(), memory["used_memory"]
    except RedisError:
        return -1, -1


async def sample_memory(
    pids: dict[str, int], redis_url: str, start: float, stop: float, log: SoakLog
) -> None:
    """RSS of each service, and what Redis holds, every `RSS_SECONDS` until `stop`.

    Redis's key count and `used_memory` tell its cache filling up apart from a leak.
    """
    client = redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        for _ in range(int((stop - start) / RSS_SECONDS) + 2):
            now = time.monotonic()
            log.rss.append((now - start, {name: read_rss(pid) for name, pid in pids.items()}))
            log.cache.append((now - start, *await cache_size(client)))
            if now >= stop:
                return
            await asyncio.sleep(RSS_SECONDS)
    finally:
        await client.aclose()


def percentile_ms(latencies: list[float], q: float) -> float | None:
    return round(float(np.percentile(latencies, q)) * 1000, 2) if latencies else None


async def report_progress(start: float, stop: float, rate: float, log: SoakLog) -> None:
    done = 0
    for _ in range(int((stop - start) / PROGRESS_SECONDS) + 1):
        await asyncio.sleep(PROGRESS_SECONDS)
        now = time.monotonic() - start
        window = log.results[done:]
        done = len(log.results)
        latencies = [r.latency for r in window]
        unexpected = sum(r.unexpected is not None for r in log.results)
        rss = (
            "  ".join(f"{name} {value / 2**20:.0f}M" for name, value in log.rss[-1][1].items())
            if log.rss
            else ""
        )
        print(
            f"[{now:6.0f}s] {done:6d} done  "
            f"{len(window) / PROGRESS_SECONDS:5.1f}/{rate:.0f} req/s  "
            f"p50 {percentile_ms(latencies, 50)} ms  p99 {percentile_ms(latencies, 99)} ms  "
            f"unexpected {unexpected}  RSS {rss}  "
            f"cached keys {log.cache[-1][1] if log.cache else '?'}",
            flush=True,
        )
        if time.monotonic() >= stop:
            return


async def run_soak(
    url: str,
    mix: RequestMix,
    rate: float,
    duration: float,
    pids: dict[str, int],
    redis_url: str,
    timeout: float,
) -> tuple[SoakLog, dict[str, list[str]]]:
    """Send `rate * duration` requests on schedule; returns the log and the pilot's labels."""
    log = SoakLog()
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        pilot_labels = await pilot(session, url, mix)
        start = time.monotonic()
        stop = start + duration
        watchers = [
            asyncio.create_task(sample_memory(pids, redis_url, start, stop, log)),
            asyncio.create_task(report_progress(start, stop, rate, log)),
        ]
        in_flight: set[asyncio.Task] = set()
        for i in range(int(rate * duration)):
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            probe = mix.next()
            if len(in_flight) >= MAX_IN_FLIGHT:
                log.results.append(
                    Result(
                        probe.kind,
                        probe.name,
                        i / rate,
                        0.0,
                        0.0,
                        None,
                        None,
                        "not sent: too many in flight",
                    )
                )
                continue
            task = asyncio.create_task(send(session, url, probe, scheduled, start, log))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=timeout + DRAIN_SECONDS)
        log.abandoned = len(in_flight)
        for task in [*in_flight, *watchers]:
            task.cancel()
        await asyncio.gather(*in_flight, *watchers, return_exceptions=True)
    return log, pilot_labels
