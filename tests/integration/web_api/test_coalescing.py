"""Images (and small V2 requests) that reach the gateway together go to model_api together
(coalescer.py): three real processes (Redis, model_api, the gateway with two workers), real
HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from harness.bad_inputs import png_claiming
from harness.hostile import gradient, unique_small_pngs
from harness.images import encode
from harness.metrics import metric
from harness.services import RunningServices, running_services
from harness.v2 import image_request, output_rows

CALLS = "mlserve_gateway_forwarded_images_per_call"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    # One call under way per worker: images that come meanwhile wait for it and go together.
    env = {"MLSERVE_COALESCE_MAX_CALLS": "1"}
    with running_services(tmp_path_factory.mktemp("coalescing"), "mnist", env) as running:
        yield running


def all_at_once(url: str, bodies: list[tuple[str, bytes]]) -> list[httpx.Response]:
    """Each (request id, image) posted from its own connection, released together."""
    return posted_together(
        url,
        [
            ("/predict", request_id, {"files": {"file": ("x.png", image)}})
            for request_id, image in bodies
        ],
    )


def posted_together(url: str, requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Each (path, request id, httpx arguments) posted from its own connection, released
    together."""
    start = threading.Barrier(len(requests))

    def post(path: str, request_id: str, arguments: dict) -> httpx.Response:
        headers = {**arguments.get("headers", {}), "x-request-id": request_id}
        rest = {name: value for name, value in arguments.items() if name != "headers"}
        with httpx.Client(base_url=url, timeout=30) as client:
            client.get("/health")  # the connection is open before the race starts
            start.wait()
            return client.post(path, headers=headers, **rest)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(lambda request: post(*request), requests))


def calls(url: str) -> tuple[float, float]:
    """(images forwarded, calls that carried them), over the gateway's workers."""
    text = httpx.get(url + "/metrics").text
    return metric(text, CALLS + "_sum"), metric(text, CALLS + "_count")


def test_images_sent_together_each_get_their_own_answer(services: RunningServices) -> None:
    good = unique_small_pngs(24, seed=700)
    bad = png_claiming(28, 28)  # a header and nothing after it
    bodies = [(f"good-{i}", image) for i, image in enumerate(good)]
    bodies += [(f"bad-{i}", bad) for i in range(4)]
    images_before, calls_before = calls(services.url)

    answers = all_at_once(services.url, bodies)

    images, used = calls(services.url)
    assert images - images_before == len(bodies)  # every one went to model_api...
    assert used - calls_before < len(bodies)  # ...and some went together
    for (request_id, image), answer in zip(bodies, answers, strict=True):
        assert answer.headers["x-request-id"] == request_id
        if request_id.startswith("bad"):
            assert answer.status_code == 400, answer.text
            assert answer.json()["request_id"] == request_id and answer.json()["error"]
            continue
        assert answer.status_code == 200, answer.text
        alone = httpx.post(
            services.model_api_url + "/v1/models/mnist/predict",
            params={"app_type": "cli"},
            content=image,
        ).json()
        assert alone["cached"] is True  # what went together was stored, each under its key
        assert answer.json()["probabilities"] == alone["probabilities"]


def test_a_large_image_goes_alone(services: RunningServices) -> None:
    large = encode(gradient((1000, 1000), "L", 3), "PNG")  # 1 MP: over 256x256
    small = unique_small_pngs(7, seed=800)
    images_before, calls_before = calls(services.url)
    answers = all_at_once(
        services.url, [("large", large)] + [(f"s{i}", s) for i, s in enumerate(small)]
    )
    assert all(a.status_code == 200 for a in answers)
    images, used = calls(services.url)
    assert images - images_before == len(small)  # the large one was not counted among them


def test_model_api_away_gives_each_its_own_503(services: RunningServices) -> None:
    services.model_api.stop()
    try:
        bodies = [(f"away-{i}", image) for i, image in enumerate(unique_small_pngs(12, seed=900))]
        for (request_id, _), answer in zip(bodies, all_at_once(services.url, bodies), strict=True):
            assert answer.status_code == 503
            assert answer.json()["code"] == "model_api_unavailable"
            assert answer.json()["request_id"] == request_id
    finally:
        services.model_api.start()


def test_small_v2_requests_sent_together_each_get_their_own_answer(
    services: RunningServices,
) -> None:
    images = unique_small_pngs(20, seed=1000)
    v2 = {f"v2-{i}": image_request(image, binary=i % 2 == 0) for i, image in enumerate(images)}
    v2.update({f"damaged-{i}": image_request(png_claiming(28, 28)) for i in range(3)})
    path = "/v2/models/mnist/infer"
    requests = [
        (path, request_id, {"content": body, "headers": headers})
        for request_id, (body, headers) in v2.items()
    ]
    images_before, calls_before = calls(services.url)

    answers = posted_together(services.url, requests)

    forwarded, used = calls(services.url)
    assert forwarded - images_before == len(requests)
    assert used - calls_before < len(requests)  # some went together
    for (_, request_id, sent), answer in zip(requests, answers, strict=True):
        assert answer.headers["x-request-id"] == request_id
        if request_id.startswith("damaged"):
            assert answer.status_code == 400, answer.text
            assert answer.json()["request_id"] == request_id and answer.json()["error"]
            continue
        assert answer.status_code == 200, answer.text
        alone = httpx.post(services.model_api_url + path, **sent)
        assert alone.status_code == 200
        np.testing.assert_array_equal(
            output_rows(answer.content, dict(answer.headers)),
            output_rows(alone.content, dict(alone.headers)),
        )
