"""model_api over HTTP (TestClient runs the lifespan), with the real model and a real Redis."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from harness.images import MODELS_DIR, drawn_digit_seven, encode, samples
from harness.metrics import metric
from harness.model_copies import copy_with_batching
from harness.redis_server import RedisServer, free_port
from mlserve_common.wire.cache_keys import KEY_PREFIX, cache_key, image_sha256
from model_api.cache import LEASE_PREFIX
from model_api.config import Settings
from model_api.main import create_app
from model_api.model_identity import folder_digests


def make_client(model: str, redis_url: str, **overrides) -> TestClient:
    settings = Settings(
        **{
            "model_name": model,
            "models_dir": MODELS_DIR,
            "redis_url": redis_url,
            "redis_retry_seconds": 0.2,
            **overrides,
        }
    )
    return TestClient(create_app(settings))


@pytest.fixture
def mnist(redis_server: RedisServer) -> Iterator[TestClient]:
    with make_client("mnist", redis_server.url) as client:
        yield client


def inferences(client: TestClient) -> int:
    return client.app.state.dataplane.repository.default().runner.inference_count


def predict(client: TestClient, data: bytes, model: str = "mnist", **params) -> dict:
    response = client.post(f"/v1/models/{model}/predict", content=data, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_cache(client: TestClient, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/health/ready").json()["cache"] != state:
        assert time.monotonic() < deadline, f"cache never became {state}"
        time.sleep(0.05)


def shipped_digest(model: str) -> str:
    """The digest a shipped model is served with (its .onnx, config and the revision)."""
    return folder_digests(MODELS_DIR, model)["1"]


@pytest.mark.parametrize("model", ["mnist", "leukemia"])
def test_every_sample_gets_its_label(model: str, redis_server: RedisServer) -> None:
    with make_client(model, redis_server.url) as client:
        for path, expected in samples(model):
            answer = predict(client, path.read_bytes(), model)
            assert answer["label"] == expected, path.name
            assert answer["model"] == model and answer["cached"] is False
            assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-4)
            assert answer["confidence"] == max(answer["probabilities"].values())


def test_a_repeated_image_runs_the_model_once(mnist: TestClient) -> None:
    data = encode(drawn_digit_seven())
    first, second = predict(mnist, data), predict(mnist, data)
    assert (first["cached"], second["cached"]) == (False, True)
    assert inferences(mnist) == 1
    assert {k: v for k, v in first.items() if k not in ("cached", "timings")} == {
        k: v for k, v in second.items() if k not in ("cached", "timings")
    }
    assert second["timings"]["inference_ms"] == 0


def test_raw_body_and_multipart_share_one_cache_entry(mnist: TestClient) -> None:
    data = encode(drawn_digit_seven())
    predict(mnist, data)
    response = mnist.post("/v1/models/mnist/predict", files={"file": ("d.png", data, "image/png")})
    assert response.json()["cached"] is True and inferences(mnist) == 1


def test_app_types_are_cached_apart(mnist: TestClient) -> None:
    data = encode(drawn_digit_seven())
    assert predict(mnist, data, app_type="cli")["cached"] is False
    assert predict(mnist, data, app_type="ui")["cached"] is False
    assert predict(mnist, data, app_type="ui")["cached"] is True
    assert inferences(mnist) == 2


def test_the_cache_holds_json_under_the_documented_key(
    mnist: TestClient, redis_server: RedisServer
) -> None:
    data = encode(drawn_digit_seven())
    answer = predict(mnist, data)
    key = cache_key("cli", "mnist", shipped_digest("mnist"), image_sha256(data))
    raw = redis.Redis.from_url(redis_server.url).get(key)
    assert raw is not None and raw.startswith(b"{") and answer["label"].encode() in raw
    assert orjson.loads(raw)["sha256"] == answer["sha256"] == hashlib.sha256(data).hexdigest()
    ttl = redis.Redis.from_url(redis_server.url).ttl(key)
    assert 0 < ttl <= Settings().cache_ttl_seconds


def test_a_corrupt_cache_value_is_a_miss_and_is_overwritten(
    mnist: TestClient, redis_server: RedisServer
) -> None:
    data = encode(drawn_digit_seven())
    key = cache_key("cli", "mnist", shipped_digest("mnist"), image_sha256(data))
    store = redis.Redis.from_url(redis_server.url)
    for foreign in (b"\x80\x04\x95 pickle?", b'{"label": "__import__(\'os\')"}', b"not json"):
        store.set(key, foreign)
        assert predict(mnist, data)["cached"] is False
        assert predict(mnist, data)["cached"] is True
    assert inferences(mnist) == 3


def test_metadata_reports_version_digest_provider_and_labels(mnist: TestClient) -> None:
    meta = mnist.get("/v1/models/mnist").json()
    assert meta["version"] == "1"
    assert meta["digest"] == shipped_digest("mnist")
    assert meta["provider"] == "CPUExecutionProvider"
    assert meta["labels"] == [str(d) for d in range(10)]
    assert meta["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert mnist.get("/v1/models").json()["models"][0]["name"] == "mnist"


def test_health_routes(mnist: TestClient) -> None:
    assert mnist.get("/health/live").json() == {"status": "alive"}
    ready = mnist.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["cache"] == "ok"


def test_errors_are_json_for_people(mnist: TestClient) -> None:
    cases = [
        (mnist.post("/v1/models/mnist/predict", content=b""), 400),
        (mnist.post("/v1/models/mnist/predict", content=b"%PDF-1.4 ..."), 415),
        (mnist.post("/v1/models/resnet/predict", content=b"x"), 404),
        (mnist.get("/v1/models/mnist/predict"), 405),
        (mnist.post("/v1/models/mnist/predict", params={"app_type": "tv"}, content=b"x"), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] and body["code"] and body["request_id"]
        assert response.headers["x-request-id"] == body["request_id"]
    assert inferences(mnist) == 0


def test_redis_down_at_start_serves_uncached_then_recovers(tmp_path) -> None:
    server = RedisServer(tmp_path / "late")
    with make_client("mnist", server.url) as client:
        assert client.get("/health/ready").json()["cache"] == "degraded"
        data = encode(drawn_digit_seven())
        assert predict(client, data)["cached"] is False
        assert predict(client, data)["cached"] is False  # nothing to cache into
        server.start()
        try:
            wait_for_cache(client, "ok")
            predict(client, data)
            assert predict(client, data)["cached"] is True
        finally:
            server.stop()


def test_redis_killed_mid_run_then_back(
    mnist: TestClient, redis_server: RedisServer, caplog
) -> None:
    data = encode(drawn_digit_seven())
    predict(mnist, data)
    store = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 10  # the answer is stored after it is sent
    while not list(store.scan_iter(KEY_PREFIX + "*")):
        assert time.monotonic() < deadline, "the answer never reached Redis"
        time.sleep(0.02)
    redis_server.stop(kill=True)
    for _ in range(3):  # still answers, uncached, with the outage logged once
        assert predict(mnist, encode(drawn_digit_seven(150)))["cached"] is False
    assert mnist.get("/health/ready").json()["cache"] == "degraded"
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 1
    redis_server.start()  # same port, same data dir: AOF brings the entry back
    wait_for_cache(mnist, "ok")
    assert predict(mnist, data)["cached"] is True
    fresh = encode(drawn_digit_seven(120))
    assert [predict(mnist, fresh)["cached"] for _ in range(2)] == [False, True]


def test_a_quick_redis_restart_goes_unnoticed(mnist: TestClient, redis_server: RedisServer) -> None:
    data = encode(drawn_digit_seven())
    predict(mnist, data)
    redis_server.restart()  # faster than the monitor's ping: pooled connections are now stale
    assert predict(mnist, data)["cached"] is True
    assert mnist.app.state.dataplane.repository.cache.errors == 0


def test_cache_disabled_when_no_redis_url() -> None:
    with make_client("mnist", "") as client:
        assert client.get("/health/ready").json()["cache"] == "disabled"
        assert predict(client, encode(drawn_digit_seven()))["label"]


def test_while_redis_is_down_requests_do_not_touch_it(tmp_path) -> None:
    url = f"redis://:x@127.0.0.1:{free_port()}/0"
    with make_client("mnist", url) as client:
        for size in range(100, 105):
            assert predict(client, encode(drawn_digit_seven(size)))["cached"] is False
        # degraded from the start: no request tried Redis (each attempt would count an error)
        assert client.app.state.dataplane.repository.cache.errors == 0
        assert client.get("/health/ready").json()["cache"] == "degraded"


def batching_models(tmp_path, **batching) -> Path:
    """A copy of models/ whose leukemia batches as given."""
    copy_with_batching(tmp_path / "models", "leukemia", batching, with_samples=False)
    return tmp_path / "models"


def post_concurrently(client: TestClient, bodies: list[bytes]) -> list:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(
            pool.map(lambda b: client.post("/v1/models/leukemia/predict", content=b), bodies)
        )


def test_a_bad_image_in_a_batch_fails_alone(tmp_path, redis_server: RedisServer) -> None:
    models = batching_models(tmp_path, max_batch_size=8, max_queue_delay_ms=300)
    good = [(path.read_bytes(), label) for path, label in samples("leukemia")]
    bodies = [data for data, _ in good] + [b"\x89PNG\r\n\x1a\n" + b"\0" * 64]
    with make_client("leukemia", redis_server.url, models_dir=models) as client:
        answers = post_concurrently(client, bodies)
        assert [a.status_code for a in answers] == [200] * len(good) + [400]
        assert [a.json()["label"] for a in answers[:-1]] == [label for _, label in good]
        sizes = client.app.state.dataplane.repository.default().runner.inference_count
    assert sizes == len(good)


def test_a_full_batch_queue_is_503_with_retry_after(tmp_path, redis_server: RedisServer) -> None:
    models = batching_models(tmp_path, max_batch_size=2, max_queue_delay_ms=500, max_queue_size=1)
    bodies = [encode(drawn_digit_seven(64 + i)) for i in range(6)]  # distinct: no sharing
    with make_client("leukemia", redis_server.url, models_dir=models) as client:
        answers = post_concurrently(client, bodies)
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) == {200, 503} and statuses.count(200) >= 1, statuses
        refused = next(a for a in answers if a.status_code == 503)
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["code"] == "overloaded" and "retry" in refused.json()["error"]
        assert client.get("/health/ready").status_code == 200  # still up


def test_metrics_count_inferences_hits_and_batches(tmp_path, redis_server: RedisServer) -> None:
    def sample(text: str, name: str, extra: str = "") -> float:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', extra))
        return metric(text, name, model="leukemia", version="1", **labels)

    models = batching_models(tmp_path, max_batch_size=8, max_queue_delay_ms=200)
    with make_client("leukemia", redis_server.url, models_dir=models) as client:
        before = client.get("/metrics").text
        bodies = [encode(drawn_digit_seven(80 + i)) for i in range(4)]
        post_concurrently(client, bodies)
        post_concurrently(client, bodies[:1])  # a hit
        assert client.post("/v1/models/leukemia/predict", content=b"not an image").is_error
        after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    for name, extra, moved in [
        ("mlserve_inferences_total", "", 4),
        ("mlserve_cache_hits_total", "", 1),
        ("mlserve_cache_misses_total", "", 4),
        ("mlserve_batch_size_sum", "", 4),
        ("mlserve_request_success_total", "", 5),
        ("mlserve_request_failure_total", ',code="unsupported_media_type"', 1),
        ("mlserve_request_duration_seconds_count", ',cached="false"', 4),
        ("mlserve_request_duration_seconds_count", ',cached="true"', 1),
        ("mlserve_queue_duration_seconds_count", "", 8),  # a decoding thread, then a batch
        ("mlserve_cache_lookup_duration_seconds_count", "", 5),
        ("mlserve_requests_in_flight", "", 0),
    ]:
        assert sample(after.text, name, extra) - sample(before, name, extra) == moved, name
    executions = sample(after.text, "mlserve_executions_total") - sample(
        before, "mlserve_executions_total"
    )
    assert 1 <= executions < 4  # batched
    assert (
        sample(after.text, "mlserve_batch_size_count") - sample(before, "mlserve_batch_size_count")
        == executions
    )
    assert (
        sample(after.text, "mlserve_compute_duration_seconds_count")
        - sample(before, "mlserve_compute_duration_seconds_count")
        == executions
    )


def test_a_crashed_leader_holds_nobody_longer_than_the_lease(redis_server: RedisServer) -> None:
    data = encode(drawn_digit_seven(91))
    digest = shipped_digest("mnist")
    lease = LEASE_PREFIX + cache_key("cli", "mnist", digest, image_sha256(data)).removeprefix(
        KEY_PREFIX
    )
    store = redis.Redis.from_url(redis_server.url)
    with make_client("mnist", redis_server.url, singleflight_lease_ms=300) as client:
        # Another worker took the lease and died: nobody will ever store its answer.
        store.set(lease, "a-crashed-worker", px=60_000)
        answer = predict(client, data)
        assert answer["cached"] is False and inferences(client) == 1
        other = encode(drawn_digit_seven(92))  # a lease that expires soon: taken over
        store.set(
            LEASE_PREFIX
            + cache_key("cli", "mnist", digest, image_sha256(other)).removeprefix(KEY_PREFIX),
            "a-crashed-worker",
            px=100,
        )
        assert predict(client, other)["cached"] is False and inferences(client) == 2
    assert store.get(lease) is not None  # a foreign lease is never deleted by a waiter


def test_a_leader_stores_its_answer_and_leaves_no_lease(
    mnist: TestClient, redis_server: RedisServer
) -> None:
    predict(mnist, encode(drawn_digit_seven(93)))
    store = redis.Redis.from_url(redis_server.url)
    assert list(store.scan_iter(LEASE_PREFIX + "*")) == []
    assert len(list(store.scan_iter(KEY_PREFIX + "*"))) == 1


def without_receipt_of_how(answer: dict) -> dict:
    """An answer less how it was obtained (cached or not, and the timings)."""
    return {k: v for k, v in answer.items() if k not in ("cached", "timings")}


def test_asked_by_content_the_stored_answer_comes_without_the_image_or_an_inference(
    mnist: TestClient, redis_server: RedisServer
) -> None:
    data = encode(drawn_digit_seven(93))
    sha256 = hashlib.sha256(data).hexdigest()
    route = f"/v1/models/mnist/predictions/{sha256}"
    missing = mnist.get(route)
    assert missing.status_code == 404 and missing.json()["code"] == "not_cached"
    assert mnist.head(route).status_code == 404
    uploaded = predict(mnist, data)
    assert uploaded["sha256"] == sha256 and uploaded["cached"] is False
    assert inferences(mnist) == 1
    asked = mnist.get(route)
    assert asked.status_code == 200 and asked.json()["cached"] is True
    assert without_receipt_of_how(asked.json()) == without_receipt_of_how(uploaded)
    upper_hex = f"/v1/models/mnist/predictions/{sha256.upper()}"
    assert without_receipt_of_how(mnist.get(upper_hex).json()) == without_receipt_of_how(uploaded)
    head = mnist.head(route)
    assert head.status_code == 200 and head.content == b""
    assert mnist.get(route, params={"app_type": "ui"}).status_code == 404  # ui keeps its own
    assert inferences(mnist) == 1  # asking never infers
    for bad in ("abc", sha256[:-1] + "g", sha256 + "0"):
        refused = mnist.get(f"/v1/models/mnist/predictions/{bad}")
        assert refused.status_code == 400 and "64 hex digits" in refused.json()["error"]
    assert mnist.get(f"/v1/models/resnet/predictions/{sha256}").status_code == 404
    redis_server.stop()
    try:  # the failed read itself marks the cache down: the answer says so, not 404
        down = mnist.get(route)
        assert down.status_code == 503 and down.json()["code"] == "cache_unavailable"
    finally:
        redis_server.start()
