"""The cli gateway in front of a real model_api process and a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

from harness.images import drawn_digit_seven, encode, samples
from harness.services import ServiceProcess
from tests.integration.web_api.in_process import gateway
from web_api.config import Settings


def test_forwards_raw_and_multipart_with_app_type_cli(model_api: ServiceProcess) -> None:
    with gateway(model_api) as client:
        for path, expected in samples("mnist"):
            raw = client.post("/predict", content=path.read_bytes())
            assert raw.status_code == 200, raw.text
            assert raw.json()["label"] == expected and raw.json()["app_type"] == "cli"
            multi = client.post("/predict", files={"file": (path.name, path.read_bytes())})
            assert multi.json()["label"] == expected and multi.json()["cached"] is True


def test_without_cache_or_coalescing_the_body_goes_as_the_client_sent_it(
    model_api: ServiceProcess,
) -> None:
    """The gateway's plain branch: no Redis to read and no coalescing, so the body and its
    content type go to model_api unchanged (a multipart form, a raw image, a wrong one)."""
    with gateway(model_api, redis_url="", coalesce_max_images=1) as client:
        state = client.app.state
        assert not state.hit_cache.enabled and not state.coalescer.coalescing
        for path, expected in samples("mnist")[:4]:
            multi = client.post("/predict", files={"file": (path.name, path.read_bytes())})
            assert multi.status_code == 200 and multi.json()["label"] == expected
            raw = client.post("/predict", content=path.read_bytes())
            assert raw.json()["label"] == expected and raw.json()["cached"] is True
        refused = client.post("/predict", content=b"%PDF-1.5")
        assert refused.status_code == 415 and refused.json()["code"] == "unsupported_media_type"
        assert "x-request-id" in refused.headers


def test_named_model_route_and_model_errors_pass_through(model_api: ServiceProcess) -> None:
    with gateway(model_api) as client:
        data = encode(drawn_digit_seven())
        assert client.post("/v1/models/mnist/predict", content=data).status_code == 200
        unknown = client.post("/v1/models/leukemia/predict", content=data)
        assert unknown.status_code == 404 and "not served" in unknown.json()["error"]
        assert client.post("/predict", content=b"%PDF-1.5").status_code == 415
        assert client.get("/v1/models/mnist").json()["labels"][7] == "7"


def test_request_id_travels_to_model_api(model_api: ServiceProcess) -> None:
    with gateway(model_api) as client:
        response = client.post("/predict", content=b"", headers={"x-request-id": "trace-me-42"})
        assert response.headers["x-request-id"] == "trace-me-42"
        assert response.json()["request_id"] == "trace-me-42"  # model_api's own answer
    log = Path(model_api.log).read_text()
    assert "[trace-me-42]" in log  # model_api's log lines carry the gateway's request id


def test_health_reports_model_api_and_cache(model_api: ServiceProcess) -> None:
    with gateway(model_api) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy" and health.json()["cache"] == "ok"


def test_body_limit_is_413_at_the_gateway(model_api: ServiceProcess) -> None:
    with gateway(model_api, max_body_bytes=1000) as client:
        response = client.post("/predict", content=b"\x89PNG" + b"0" * 5000)
        assert response.status_code == 413 and "limit" in response.json()["error"]


def test_model_api_down_is_503_fast_then_recovers(model_api: ServiceProcess) -> None:
    data = encode(drawn_digit_seven())
    with gateway(model_api) as client:
        model_api.stop()
        start = time.monotonic()
        down = client.post("/predict", content=data)
        assert down.status_code == 503 and down.json()["code"] == "model_api_unavailable"
        assert time.monotonic() - start < Settings().model_api_timeout_seconds
        assert client.get("/health").status_code == 503
        assert client.get("/health").json()["status"] == "down"
        model_api.start()
        assert client.post("/predict", content=data).status_code == 200


def test_slow_model_api_is_504(model_api: ServiceProcess) -> None:
    big = encode(drawn_digit_seven(1500))
    with gateway(model_api, model_api_timeout_seconds=0.001) as client:
        response = client.post("/predict", content=big)
        assert response.status_code == 504 and response.json()["code"] == "model_api_timeout"


def test_api_key_guards_everything_but_health(model_api: ServiceProcess) -> None:
    data = encode(drawn_digit_seven())
    with gateway(model_api, api_key="s3cret-key") as client:
        for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer s3cret-ke"}):
            response = client.post("/predict", content=data, headers=headers)
            assert response.status_code == 401 and "API key" in response.json()["error"]
            assert client.get("/v1/models", headers=headers).status_code == 401
        assert client.get("/health").status_code == 200
        assert client.get("/health/live").status_code == 200
        ok_bearer = client.post(
            "/predict", content=data, headers={"authorization": "Bearer s3cret-key"}
        )
        ok_header = client.post("/predict", content=data, headers={"x-api-key": "s3cret-key"})
        assert ok_bearer.status_code == ok_header.status_code == 200
        assert ok_header.json()["cached"] is True  # answered by the gateway's cache read...
        repeat = client.post("/predict", content=data, headers={"x-api-key": "wrong"})
        assert repeat.status_code == 401  # ...which needs the key all the same


def test_cors_is_closed_by_default(model_api: ServiceProcess) -> None:
    with gateway(model_api) as client:
        preflight = client.options(
            "/predict",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
