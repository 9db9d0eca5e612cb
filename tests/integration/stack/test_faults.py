"""Fault injection with requests flowing: kill and restart Redis and model_api, SIGTERM
the services mid-request, and count every answer.

Allowed answers: 200 with the right label, or the intended 503 while model_api is gone.
Anything else (another status, a wrong label, a dropped connection) fails the test.
"""

from __future__ import annotations

import itertools
import json
import signal
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from PIL import Image

from harness.images import encode, samples
from harness.net import established_connections
from harness.services import RunningServices, running_services
from model_api.schemas import Prediction


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningServices]:
    with running_services(tmp_path, "mnist", MLSERVE_REDIS_RETRY_SECONDS="0.2") as services:
        yield services


def variants(count: int) -> list[tuple[bytes, str]]:
    """Distinct byte strings with known labels: the samples re-saved with a counter chunk."""
    from PIL.PngImagePlugin import PngInfo

    out = []
    for i in range(count):
        path, label = samples("mnist")[i % len(samples("mnist"))]
        info = PngInfo()
        info.add_text("variant", str(i))
        out.append((encode(Image.open(path), "PNG", pnginfo=info), label))
    return out


def tagged(png: bytes, tag: int) -> bytes:
    """The same image as new bytes: a text chunk holding `tag` right after the header chunk
    (8 bytes of signature + 25 of IHDR), without encoding the pixels again."""
    data = b"tEXt" + b"request\x00" + str(tag).encode()
    chunk = struct.pack(">I", len(data) - 4) + data + struct.pack(">I", zlib.crc32(data))
    return png[:33] + chunk + png[33:]


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    wrong: list = field(default_factory=list)
    cached_after: list = field(default_factory=list)


def flow(url: str, duration: float, events: dict[float, callable]) -> Tally:
    """Post images from 4 threads for `duration` s, firing `events` at their times: two in
    three from a few repeated images (hits once cached), the third never sent before (a miss
    however fast the machine: a fixed pool was all cached within seconds on a fast one)."""
    tally, lock = Tally(), threading.Lock()
    pool = variants(40)
    hot = pool[:8]
    fresh = itertools.count()
    start = time.monotonic()
    stop = start + duration

    def worker(seed: int) -> None:
        with httpx.Client(timeout=20) as client:
            i = seed
            while time.monotonic() < stop:
                if i % 3:
                    data, label = hot[i % len(hot)]
                else:
                    data, label = pool[(i * 7) % len(pool)]
                    data = tagged(data, next(fresh))
                i += 4
                try:
                    response = client.post(url + "/predict", content=data)
                    status = response.status_code
                    body = response.json()
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    status, body = type(exc).__name__, {}
                with lock:
                    tally.statuses[status] += 1
                    if status == 200 and body["label"] != label:
                        tally.wrong.append((label, body["label"]))
                    if status == 200:
                        tally.cached_after.append((time.monotonic() - start, body["cached"]))
                    if status == 503 and body.get("code") != "model_api_unavailable":
                        tally.wrong.append(("503 code", body))

    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(worker, seed) for seed in range(4)]
        for at, action in sorted(events.items()):
            time.sleep(max(0.0, start + at - time.monotonic()))
            action()
        for future in futures:
            future.result()
    return tally


def test_redis_killed_and_restarted_while_requests_flow(stack: RunningServices) -> None:
    tally = flow(
        stack.url,
        9,
        {
            2.0: lambda: stack.redis.stop(kill=True),
            5.0: stack.redis.start,
        },
    )
    assert set(tally.statuses) == {200}, tally.statuses
    assert not tally.wrong
    assert any(cached for at, cached in tally.cached_after if at > 6.5), "caching resumed"
    assert httpx.get(stack.url + "/health").json()["status"] == "healthy"


def test_model_api_killed_and_restarted_while_requests_flow(stack: RunningServices) -> None:
    def kill_model_api() -> None:
        stack.model_api.process.send_signal(signal.SIGKILL)
        stack.model_api.process.wait()

    tally = flow(stack.url, 10, {2.0: kill_model_api, 4.0: stack.model_api.start})
    assert set(tally.statuses) <= {200, 503}, tally.statuses
    assert tally.statuses[503] > 0 and tally.statuses[200] > 0
    assert not tally.wrong
    assert httpx.post(stack.url + "/predict", content=variants(1)[0][0]).status_code == 200


UPLOAD_SECONDS = 1.5
"""How long each drained request takes to send its body: SIGTERM comes in the middle."""


def slow_upload(data: bytes, parts: int = 10) -> Iterator[bytes]:
    """The body in `parts` pieces spread over UPLOAD_SECONDS (a slow client, chunked)."""
    size = -(-len(data) // parts)
    for start in range(0, len(data), size):
        yield data[start : start + size]
        time.sleep(UPLOAD_SECONDS / parts)


@pytest.mark.parametrize("service", ["model_api", "web_api"])
def test_sigterm_drains_in_flight_requests(stack: RunningServices, service: str) -> None:
    # Each request is still uploading when SIGTERM comes (however fast the machine): the
    # service must read it to the end and answer it before it exits.
    side = 300 if service == "model_api" else 299  # not the other case's images: no cache hit
    big = [encode(Image.open(path).resize((side, side)), "PNG") for path, _ in samples("mnist")[:6]]
    labels = [label for _, label in samples("mnist")[:6]]
    target = (
        stack.model_api_url + "/v1/models/mnist/predict"
        if service == "model_api"
        else stack.url + "/predict"
    )

    def post(data: bytes) -> httpx.Response:
        return httpx.post(target, content=slow_upload(data), timeout=30)

    with ThreadPoolExecutor(len(big)) as executor:
        started = time.monotonic()
        futures = [executor.submit(post, data) for data in big]
        port = int(target.split(":")[2].split("/")[0])
        while established_connections(port) < len(big):  # every request has reached it
            assert time.monotonic() - started < 20, "requests never arrived"
            time.sleep(0.02)
        time.sleep(0.3)  # headers in, bodies arriving
        assert not any(future.done() for future in futures), "answered before SIGTERM"
        code = getattr(stack, service).stop()
        answers = [future.result() for future in futures]
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete
    assert code in (0, -signal.SIGTERM)
    log = getattr(stack, service).log.read_text()
    # With several workers, one that held no request may finish first: the one that waited
    # for its connections finishes last.
    assert log.index("Waiting for connections to close") < log.rindex(
        "Application shutdown complete"
    )
    assert [a.status_code for a in answers] == [200] * len(big), [a.text[:300] for a in answers]
    assert [a.json()["label"] for a in answers] == labels
    store = redis.Redis.from_url(stack.redis.url)
    for key in store.scan_iter("mlserve:prediction:*"):
        Prediction.model_validate_json(store.get(key))  # nothing half-written
