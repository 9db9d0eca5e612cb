"""OpenTelemetry traces across the stack, received by a real OTLP collector in the test
(opentelemetry-proto's own TraceService): real processes, a real Redis, real HTTP and gRPC."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

from harness.images import samples
from harness.metrics import metric
from harness.otlp import OtlpReceiver, Span
from harness.services import RunningServices, grpc_env, running_services
from mlserve_common.runtime import tracing

SERVER, CLIENT = 2, 3  # OTLP's span kinds
BOTH = {"web_api", "model_api"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServices]:
    logs = {"MLSERVE_LOG_FORMAT": "json", "MLSERVE_ACCESS_LOG": "true"}
    web_api_env = {**receiver.env(), **grpc_env(), **logs, "MLSERVE_COALESCE_MAX_CALLS": "1"}
    with running_services(
        tmp_path_factory.mktemp("tracing"), "mnist", web_api_env, **receiver.env(), **logs
    ) as services:
        yield services


def traceparent() -> tuple[str, str, str]:
    """A client's trace: (header, trace id, its span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def by_service(spans: list[Span], service: str) -> list[Span]:
    return [s for s in spans if s.service == service]


def one(spans: list[Span], service: str, name: str) -> Span:
    (found,) = [s for s in spans if s.service == service and s.name == name]
    return found


def assert_well_formed(spans: list[Span], client_span: str | None) -> Span:
    """Every span's parent is in the trace (the gateway's request span's is the client's, or
    none), each carries the request id; the gateway's request span."""
    ids = {s.span_id for s in spans}
    (root,) = [s for s in spans if s.parent_id not in ids]
    assert root.service == "web_api" and root.kind == SERVER
    assert root.parent_id == (client_span or "")
    for span in spans:
        assert span.attributes.get("mlserve.request_id"), span
        assert span.start_ns <= span.end_ns, span
    return root


def test_one_predict_is_one_trace_through_both_services(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    header, trace_id, client_span = traceparent()
    image = samples("mnist")[0][0].read_bytes()
    answer = httpx.post(stack.url + "/predict", content=image, headers={"traceparent": header})
    assert answer.status_code == 200
    spans = receiver.trace(trace_id, BOTH)
    assert {s.service for s in spans} == BOTH
    gateway = assert_well_formed(spans, client_span)
    assert gateway.name == "POST /predict"
    assert gateway.attributes["http.response.status_code"] == 200
    assert gateway.attributes["mlserve.model"] == "mnist"
    lookup = one(spans, "web_api", "cache lookup")
    forward = one(spans, "web_api", "forward")
    assert lookup.parent_id == forward.parent_id == gateway.span_id
    assert lookup.attributes["mlserve.cache"] == "forwarded" and forward.kind == CLIENT
    # model_api: its request, under the gateway's forward, and the stages under that
    (request,) = [s for s in by_service(spans, "model_api") if s.kind == SERVER]
    assert request.parent_id == forward.span_id
    assert request.attributes["mlserve.request_id"] == gateway.attributes["mlserve.request_id"]
    stages = {s.name: s for s in by_service(spans, "model_api") if s is not request}
    assert {"cache lookup", "queue", "decode", "preprocess", "inference", "cache write"} <= set(
        stages
    )
    assert stages["cache lookup"].attributes["mlserve.cache"] == "miss"
    assert stages["inference"].attributes["mlserve.batch_size"] == 1
    for stage in stages.values():
        assert stage.attributes["mlserve.model"] == "mnist"
        assert stage.attributes["mlserve.digest"] == answer.json()["digest"]
    ids = {s.span_id for s in by_service(spans, "model_api")}
    assert all(s.parent_id in ids for s in stages.values())  # none escaped the request


def test_a_request_without_traceparent_starts_a_trace_at_the_gateway(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    image = samples("mnist")[1][0].read_bytes()
    request_id = "untraced-" + secrets.token_hex(4)
    answer = httpx.post(stack.url + "/predict", content=image, headers={"x-request-id": request_id})
    assert answer.status_code == 200
    deadline = time.monotonic() + 20
    while not (
        mine := [
            s for s in receiver.spans() if s.attributes.get("mlserve.request_id") == request_id
        ]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    spans = receiver.trace(mine[0].trace_id, BOTH)
    assert {s.service for s in spans} == BOTH
    assert_well_formed(spans, None)


def test_grpc_calls_continue_the_clients_trace(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    header, trace_id, client_span = traceparent()
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([samples("mnist")[2][0].read_bytes()], dtype=np.object_))
    with triton.InferenceServerClient(stack.grpc_target) as client:
        client.infer("mnist", [image], headers={"traceparent": header})
    spans = receiver.trace(trace_id, BOTH)
    gateway = assert_well_formed(spans, client_span)
    assert gateway.name == "grpc ModelInfer"
    forward = one(spans, "web_api", "forward")
    (request,) = [s for s in by_service(spans, "model_api") if s.kind == SERVER]
    assert forward.parent_id == gateway.span_id and request.parent_id == forward.span_id
    assert {"decode", "preprocess", "inference"} <= {s.name for s in by_service(spans, "model_api")}


def test_requests_that_share_a_call_keep_their_own_traces(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    """The gateway sends at most one call at a time here (MLSERVE_COALESCE_MAX_CALLS=1), so
    concurrent images go to model_api together: each still has its whole trace."""
    images = [path.read_bytes() + b"\0" * 7 for path, _ in samples("mnist")[:8]]  # new misses
    metrics_before = httpx.get(stack.url + "/metrics").text
    clients = [traceparent() for _ in images]

    def post(pair: tuple[bytes, tuple[str, str, str]]) -> int:
        image, (header, _, _) = pair
        return httpx.post(
            stack.url + "/predict", content=image, headers={"traceparent": header}, timeout=30
        ).status_code

    with ThreadPoolExecutor(len(images)) as pool:
        assert set(pool.map(post, zip(images, clients, strict=True))) == {200}
    metrics_after = httpx.get(stack.url + "/metrics").text
    name = "mlserve_gateway_forwarded_images_per_call_count"
    calls = metric(metrics_after, name) - metric(metrics_before, name)
    assert calls < len(images)  # some went together
    for _, trace_id, client_span in clients:
        spans = receiver.trace(trace_id, BOTH)
        assert_well_formed(spans, client_span)
        forward = one(spans, "web_api", "forward")
        (request,) = [s for s in by_service(spans, "model_api") if s.kind == SERVER]
        assert request.parent_id == forward.span_id
        assert "inference" in {s.name for s in by_service(spans, "model_api")}


def test_error_lines_and_json_logs_carry_the_trace_id(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    header, trace_id, _ = traceparent()
    answer = httpx.post(
        stack.url + "/predict", content=b"not an image", headers={"traceparent": header}
    )
    assert answer.status_code == 415
    request_id = answer.json()["request_id"]
    receiver.trace(trace_id, BOTH)
    for log in (stack.model_api.log, stack.web_api.log):
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("request_id") == request_id]
        assert mine, log
        assert all(line["trace_id"] == trace_id for line in mine), mine
    errors = [
        line
        for line in map(json.loads, filter(None, stack.model_api.log.read_text().splitlines()))
        if line.get("request_id") == request_id and line.get("code")
    ]
    assert errors and errors[0]["status"] == 415


def test_off_by_default_and_then_nothing_is_made() -> None:
    """Without an OTLP endpoint in the environment (as in this test process) the module
    hands out one shared no-op and no trace context."""
    assert not tracing.wanted({})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"})
    assert not tracing.enabled
    assert tracing.span("a") is tracing.span("b") is tracing.item_span("c", None)
    assert (
        tracing.traceparent() is None and tracing.capture() is None and tracing.trace_id() is None
    )


def test_a_grpc_error_line_carries_the_trace_id(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    header, trace_id, _ = traceparent()
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([b"not an image"], dtype=np.object_))
    with (
        triton.InferenceServerClient(stack.grpc_target) as client,
        pytest.raises(triton.InferenceServerException, match="INVALID_ARGUMENT"),
    ):
        client.infer("mnist", [image], headers={"traceparent": header})
    receiver.trace(trace_id, BOTH)
    lines = [json.loads(line) for line in stack.web_api.log.read_text().splitlines()]
    errors = [line for line in lines if line.get("trace_id") == trace_id and line.get("code")]
    assert errors and errors[0]["path"].endswith("/ModelInfer")
    (access,) = [
        line for line in lines if line.get("trace_id") == trace_id and "duration_ms" in line
    ]
    assert access["status"] == 3  # INVALID_ARGUMENT


def test_the_cli_prints_the_trace_each_file_went_in(
    stack: RunningServices, receiver: OtlpReceiver
) -> None:
    from tests.integration.cli.test_mlserve_cli import mlserve

    files = [str(path) for path, _ in samples("mnist")[3:5]]
    ran = mlserve("predict", "--trace", "--json", *files, url=stack.url)
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    trace_ids = [result["trace_id"] for result in results]
    assert len(set(trace_ids)) == len(files) and all(len(t) == 32 for t in trace_ids)
    for trace_id in trace_ids:  # asked by content, then uploaded: both calls in its trace
        spans = receiver.trace(trace_id, BOTH)
        gateways = [s for s in spans if s.service == "web_api" and s.kind == SERVER]
        assert {s.name.split(" ")[0] for s in gateways} == {"GET", "POST"}
        assert any(s.name == "inference" for s in spans)
    table = mlserve("predict", "--trace", files[0], url=stack.url).stdout
    (printed,) = re.findall(r"\b[0-9a-f]{32}\b", table)  # the table's trace column
    assert receiver.trace(printed, BOTH)
