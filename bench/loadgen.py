"""Closed-loop HTTP load: N aiohttp clients POST one file for a fixed time; prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp

MAX_REQUESTS_PER_CLIENT = 1_000_000
"""A bound on each client's loop besides the clock."""


async def client_loop(
    session: aiohttp.ClientSession, url: str, body: bytes, start: float, stop: float, out: dict
) -> None:
    """Post `body` back to back until `stop`; keep latencies of requests begun after `start`."""
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        began = time.perf_counter()
        if began >= stop:
            return
        try:
            async with session.post(url, data=body) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        ended = time.perf_counter()
        if began >= start and ended <= stop:
            out["latencies" if ok else "errors"].append(ended - began)


async def run_load(url: str, body: bytes, concurrency: int, duration: float, warmup: float) -> dict:
    """Drive `url` with `concurrency` clients; figures cover the `duration` after `warmup`."""
    out: dict[str, list[float]] = {"latencies": [], "errors": []}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"content-type": "image/png"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as s:
        start = time.perf_counter() + warmup
        stop = start + duration
        await asyncio.gather(
            *(client_loop(s, url, body, start, stop, out) for _ in range(concurrency))
        )
    latencies = sorted(out["latencies"])
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "errors": len(out["errors"]),
        "rps": len(latencies) / duration,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("file", type=Path)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    body = args.file.read_bytes()
    result = asyncio.run(run_load(args.url, body, args.concurrency, args.duration, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
