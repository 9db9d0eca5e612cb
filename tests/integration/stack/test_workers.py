"""model_api in several worker processes: one inference for identical concurrent misses
across all of them, metrics summed over all of them, a lost worker replaced."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from harness.images import drawn_digit_seven, encode
from harness.metrics import metric as parse_metric
from harness.net import port_of
from harness.redis_server import RedisServer, free_port
from harness.services import ServiceProcess, model_api_process

WORKERS = 3


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("workers")
    redis_server = RedisServer(tmp / "redis").start()
    service = model_api_process(
        "mnist", free_port(), redis_server.url, tmp / "model_api.log", MLSERVE_WORKERS=str(WORKERS)
    )
    service.start()
    yield service
    service.stop()
    redis_server.stop()


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    """One sample of model_api's /metrics (0 when absent), read on a fresh connection."""
    return parse_metric(httpx.get(service.url + "/metrics").text, name, **labels)


def worker_pids(service: ServiceProcess) -> set[int]:
    """The supervisor's children that serve requests."""
    pids = set()
    for child in psutil.Process(service.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:  # a killed worker not yet reaped, or gone
            pass
    return pids


async def post_together(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    """Every body on its own connection, all at once (the kernel spreads them over workers)."""

    async def one(body: bytes) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(url, content=body)

    return await asyncio.gather(*(one(b) for b in bodies))


def test_the_service_runs_the_configured_number_of_workers(workers: ServiceProcess) -> None:
    assert len(worker_pids(workers)) == WORKERS


def test_a_burst_of_connections_is_spread_over_the_workers(workers: ServiceProcess) -> None:
    """48 clients connecting at once: each worker holds about a third of them. Where the
    workers accepted from one shared socket, whichever woke first took most of a burst."""
    port = port_of(workers.url)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(48)]
    try:
        for client in clients:
            client.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        names = set()
        for client in clients:  # every connection accepted and answered, and kept alive
            answer = client.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            names.add(re.search(rb"\r\nx-mlserve-worker: (\w+)\r\n", answer).group(1))
            assert f"\r\nx-mlserve-workers: {WORKERS}\r\n".encode() in answer
        held = {
            pid: sum(
                1
                for c in psutil.Process(pid).net_connections("tcp")
                if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
            )
            for pid in worker_pids(workers)
        }
    finally:
        for client in clients:
            client.close()
    assert sum(held.values()) == 48
    assert len(names) == WORKERS  # each answer names its worker (the gateway balances by it)
    # A kernel hash of the addresses splits them: 16 each on average, and more than 28
    # (the odds against are about 1 in 10^5 per worker) means the spreading is not at work.
    assert max(held.values()) <= 28, held


def test_64_identical_concurrent_requests_run_the_model_once(workers: ServiceProcess) -> None:
    url = workers.url + "/v1/models/mnist/predict"
    for attempt in range(3):  # a fresh image each time: every one is a miss at first
        image = encode(drawn_digit_seven(1400 + attempt), compress_level=1)  # slow to decode
        before = metric(workers, "mlserve_inferences_total", model="mnist")
        shared_before = metric(
            workers, "mlserve_singleflight_waits_total", level="redis", model="mnist"
        )
        answers = asyncio.run(post_together(url, [image] * 64))
        assert [a.status_code for a in answers] == [200] * 64
        assert {a.json()["label"] for a in answers} == {"7"}
        assert metric(workers, "mlserve_inferences_total", model="mnist") - before == 1
        if metric(workers, "mlserve_singleflight_waits_total", level="redis", model="mnist") > (
            shared_before
        ):
            return  # some waited in another worker, through the Redis lease: proven
    pytest.fail("the requests never met in different workers (no wait through Redis)")


def test_metrics_are_totals_over_all_workers(workers: ServiceProcess) -> None:
    url = workers.url + "/v1/models/mnist/predict"
    before = metric(workers, "mlserve_inferences_total", model="mnist")
    bodies = [encode(drawn_digit_seven(100 + i)) for i in range(30)]
    assert {a.status_code for a in asyncio.run(post_together(url, bodies))} == {200}
    readings = {metric(workers, "mlserve_inferences_total", model="mnist") for _ in range(12)}
    assert readings == {before + 30}  # whichever worker answers /metrics
    assert (
        metric(workers, "mlserve_request_duration_seconds_count", cached="false", model="mnist")
        >= 30
    )


def test_a_killed_worker_is_replaced_and_counts_survive(workers: ServiceProcess) -> None:
    url = workers.url + "/v1/models/mnist/predict"
    before = metric(workers, "mlserve_inferences_total", model="mnist")
    victim = sorted(worker_pids(workers))[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(pids := worker_pids(workers)) < WORKERS or victim in pids:
        assert time.monotonic() < deadline, "the lost worker was not replaced"
        time.sleep(0.2)
    answers = asyncio.run(post_together(url, [encode(drawn_digit_seven(60 + i)) for i in range(9)]))
    assert [a.status_code for a in answers] == [200] * 9
    assert metric(workers, "mlserve_inferences_total", model="mnist") >= before + 9


def test_a_port_in_use_is_refused_not_shared(tmp_path) -> None:
    """Workers share their port through SO_REUSEPORT, which would also let a second service
    join a port another one listens on with it, and take half its clients. It must refuse."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    service = model_api_process("mnist", port, "redis://127.0.0.1:1/0", tmp_path / "log")
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            service.start(timeout=30)
        assert service.process.wait(timeout=30) == 3  # uvicorn's STARTUP_FAILURE
        assert "cannot listen on 127.0.0.1" in service.log.read_text()
    finally:
        service.stop()
        holder.close()
