"""A rolling restart (SIGHUP) of either service under load loses no request: 64 keep-alive
clients send 20,000 requests, the service replaces every worker meanwhile, and every request
is answered 200 (issue 27: the gateway's old workers used to close keep-alive connections
while requests were arriving on them)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import aiohttp
import psutil
import pytest

from harness.images import drawn_digit_seven, encode
from harness.services import RunningServices, ServiceProcess, running_services

CLIENTS = 64
REQUESTS = 20_000
RESTART_AFTER = 3_000
"""Requests answered before the SIGHUP, so that it lands under full load."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    with running_services(tmp_path_factory.mktemp("rolling"), "mnist") as services:
        yield services


def workers(service: ServiceProcess) -> set[int]:
    """The supervisor's children that serve requests (not multiprocessing's tracker)."""
    assert service.process is not None
    return {
        child.pid
        for child in psutil.Process(service.process.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    }


async def load(url: str, image: bytes, on_count: int, at_count) -> Counter:
    """REQUESTS posts of `image` over CLIENTS keep-alive connections; `at_count()` is called
    once, when `on_count` answers have come. Every outcome is counted (status or error)."""
    outcomes: Counter = Counter()
    sent = 0
    connector = aiohttp.TCPConnector(limit=CLIENTS, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal sent
            while sent < REQUESTS:
                sent += 1
                try:
                    async with session.post(url, data=image) as response:
                        await response.read()
                        outcomes[response.status] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    outcomes[type(exc).__name__] += 1
                if sum(outcomes.values()) == on_count:
                    at_count()

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return outcomes


def restarted_under_load(service: ServiceProcess, url: str, image: bytes) -> Counter:
    """Load `url`, SIGHUP `service` once it is under way, and wait until every one of its
    workers was replaced; the outcomes of every request."""
    before = workers(service)
    assert service.process is not None
    hup = lambda: os.kill(service.process.pid, signal.SIGHUP)  # noqa: E731
    outcomes = asyncio.run(load(url, image, RESTART_AFTER, hup))
    deadline = time.monotonic() + 60
    while workers(service) & before:  # the restart may end after the load
        assert time.monotonic() < deadline, f"the workers were not all replaced; {outcomes}"
        time.sleep(0.1)
    return outcomes


def test_a_rolling_restart_of_the_gateway_loses_no_request(stack: RunningServices) -> None:
    image = encode(drawn_digit_seven(77))
    url = stack.url + "/predict"
    outcomes = restarted_under_load(stack.web_api, url, image)
    assert outcomes == Counter({200: REQUESTS})


def test_a_rolling_restart_of_model_api_loses_no_request(stack: RunningServices) -> None:
    image = encode(drawn_digit_seven(78))
    url = stack.model_api_url + "/v1/models/mnist/predict"
    outcomes = restarted_under_load(stack.model_api, url, image)
    assert outcomes == Counter({200: REQUESTS})
