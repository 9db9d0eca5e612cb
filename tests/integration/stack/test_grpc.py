"""The Open Inference Protocol over gRPC at the gateway, spoken by the real Triton client
(`tritonclient[grpc]`, unmodified) and by tritonclient's own stub, against real processes:
Redis, model_api (two workers) and the gateway (two workers, an API key)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from harness import ROOT
from harness.hostile import gradient
from harness.images import MODELS_DIR, encode, samples
from harness.metrics import metric, settled_changes
from harness.redis_server import free_port
from harness.services import (
    RunningServices,
    ServiceProcess,
    grpc_env,
    running_services,
    web_api_process,
)
from model_api.model_config import load_model_config
from tests.integration.stack.test_v2 import served_tensor

KEY = "grpc-test-key"
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    web_api_env = {**grpc_env(), "MLSERVE_API_KEY": KEY, "MLSERVE_MAX_BODY_BYTES": str(2**22)}
    with running_services(tmp_path_factory.mktemp("grpc"), "mnist", web_api_env) as services:
        yield services


@pytest.fixture
def client(stack: RunningServices) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(stack.grpc_target) as client:
        yield client


@pytest.fixture
def stub(stack: RunningServices) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def predict_probabilities(stack: RunningServices, image: bytes) -> np.ndarray:
    answer = httpx.post(stack.url + "/predict", content=image, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    return np.array(list(answer.json()["probabilities"].values()), dtype=np.float32)


def image_input(*images: bytes) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


def model_api_metrics(stack: RunningServices) -> str:
    return httpx.get(stack.model_api_url + "/metrics").text


def refusal(call) -> InferenceServerException:  # noqa: ANN001 - any client call
    with pytest.raises(InferenceServerException) as refused:
        call()
    return refused.value


# health and metadata
def test_health_and_server_metadata_are_open(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "mlserve"
    assert {"binary_tensor_data", "model_repository"} <= set(server["extensions"])


def test_model_metadata_and_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_model_ready("mnist", headers=AUTH)
    assert client.is_model_ready("mnist", "1", headers=AUTH)
    metadata = client.get_model_metadata("mnist", headers=AUTH, as_json=True)
    assert metadata["name"] == "mnist" and metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert {"name": "input", "datatype": "FP32", "shape": ["-1", "1", "28", "28"]} in metadata[
        "inputs"
    ]
    assert {"name": "image", "datatype": "BYTES", "shape": ["-1"]} in metadata["inputs"]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": ["-1", "10"]}
    ]


# inference
def test_bytes_images_match_predict_and_repeat_from_the_cache(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    files = [path.read_bytes() for path, _ in samples("mnist")[:4]]
    result = client.infer("mnist", [image_input(*files)], headers=AUTH, request_id="mine")
    rows = result.as_numpy("probabilities")
    response = result.get_response()
    assert response.id == "mine" and response.model_name == "mnist"
    assert response.model_version == "1" and len(response.raw_output_contents) == 1
    assert rows.shape == (4, 10)
    for row, data, (_, label) in zip(rows, files, samples("mnist")[:4], strict=True):
        np.testing.assert_allclose(row, predict_probabilities(stack, data), atol=1e-6)
        assert str(int(row.argmax())) == label

    before = model_api_metrics(stack)
    again = client.infer("mnist", [image_input(*files)], headers=AUTH)
    after = model_api_metrics(stack)
    np.testing.assert_array_equal(again.as_numpy("probabilities"), rows)
    assert metric(after, "mlserve_inferences_total") == metric(before, "mlserve_inferences_total")
    hits = "mlserve_cache_hits_total"
    assert metric(after, hits) - metric(before, hits) == 1  # the request's one cache entry


def test_an_fp32_tensor_matches_predict(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    path, label = samples("mnist")[1]
    tensor = served_tensor(path.read_bytes())
    given = triton.InferInput("input", list(tensor.shape), "FP32")
    given.set_data_from_numpy(tensor)
    wanted = [triton.InferRequestedOutput("probabilities")]
    rows = client.infer("mnist", [given], outputs=wanted, headers=AUTH).as_numpy("probabilities")
    np.testing.assert_allclose(rows[0], predict_probabilities(stack, path.read_bytes()), atol=1e-6)
    assert str(int(rows[0].argmax())) == label


def test_typed_contents_match_raw_contents(
    stack: RunningServices, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    """Clients other than tritonclient send `contents` (fp32_contents, bytes_contents)."""
    path, _ = samples("mnist")[2]
    image = path.read_bytes()
    tensor = served_tensor(image)
    expected = predict_probabilities(stack, image)
    requests = [
        service_pb2.ModelInferRequest(
            model_name="mnist",
            inputs=[
                service_pb2.ModelInferRequest.InferInputTensor(
                    name="input",
                    datatype="FP32",
                    shape=list(tensor.shape),
                    contents=service_pb2.InferTensorContents(fp32_contents=tensor.ravel()),
                )
            ],
        ),
        service_pb2.ModelInferRequest(
            model_name="mnist",
            inputs=[
                service_pb2.ModelInferRequest.InferInputTensor(
                    name="image",
                    datatype="BYTES",
                    shape=[1],
                    contents=service_pb2.InferTensorContents(bytes_contents=[image]),
                )
            ],
        ),
    ]
    for request in requests:
        response = stub.ModelInfer(request, metadata=(("x-api-key", KEY),), timeout=30)
        (output,) = response.outputs
        assert (output.name, output.datatype, list(output.shape)) == (
            "probabilities",
            "FP32",
            [1, 10],
        )
        row = np.frombuffer(response.raw_output_contents[0], "<f4")
        np.testing.assert_allclose(row, expected, atol=1e-6)


# errors
@pytest.mark.parametrize(
    ("model", "version", "name", "shape", "datatype", "code", "message"),
    [
        ("resnet50", "", "input", [1, 1, 28, 28], "FP32", "NOT_FOUND", "not served"),
        ("mnist", "7", "input", [1, 1, 28, 28], "FP32", "NOT_FOUND", "version"),
        ("../mnist", "", "input", [1, 1, 28, 28], "FP32", "NOT_FOUND", "not served"),
        ("mnist", "", "input", [1, 1, 27, 28], "FP32", "INVALID_ARGUMENT", "has shape"),
        ("mnist", "", "input", [1, 1, 28, 28], "FP64", "INVALID_ARGUMENT", "is FP32, not FP64"),
        ("mnist", "", "pixels", [1, 1, 28, 28], "FP32", "INVALID_ARGUMENT", "no input 'pixels'"),
    ],
)
def test_bad_requests_get_their_status_code(
    client: triton.InferenceServerClient,
    model: str,
    version: str,
    name: str,
    shape: list[int],
    datatype: str,
    code: str,
    message: str,
) -> None:
    given = triton.InferInput(name, shape, datatype)
    given.set_data_from_numpy(np.zeros(shape, dtype=triton.triton_to_np_dtype(datatype)))
    refused = refusal(lambda: client.infer(model, [given], model_version=version, headers=AUTH))
    assert refused.status() == f"StatusCode.{code}"
    assert message in refused.message() and "request id" in refused.message()


def test_an_unknown_output_and_a_file_that_is_no_image_are_invalid(
    client: triton.InferenceServerClient,
) -> None:
    path, _ = samples("mnist")[0]
    wanted = [triton.InferRequestedOutput("logits")]
    refused = refusal(
        lambda: client.infer(
            "mnist", [image_input(path.read_bytes())], outputs=wanted, headers=AUTH
        )
    )
    assert refused.status() == "StatusCode.INVALID_ARGUMENT" and "logits" in refused.message()
    refused = refusal(lambda: client.infer("mnist", [image_input(b"not an image")], headers=AUTH))
    assert refused.status() == "StatusCode.INVALID_ARGUMENT"
    classification = [triton.InferRequestedOutput("probabilities", class_count=3)]
    refused = refusal(
        lambda: client.infer(
            "mnist", [image_input(path.read_bytes())], outputs=classification, headers=AUTH
        )
    )
    assert refused.status() == "StatusCode.INVALID_ARGUMENT"
    assert "classification" in refused.message()


@pytest.mark.parametrize(
    "headers",
    [None, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"authorization": KEY}],
)
def test_a_missing_or_wrong_key_is_unauthenticated(
    client: triton.InferenceServerClient, headers: dict[str, str] | None
) -> None:
    path, _ = samples("mnist")[0]
    calls = [
        lambda: client.infer("mnist", [image_input(path.read_bytes())], headers=headers),
        lambda: client.get_model_metadata("mnist", headers=headers),
        lambda: client.is_model_ready("mnist", headers=headers),
        lambda: client.get_model_repository_index(headers=headers),
        lambda: client.load_model("leukemia", headers=headers),
        lambda: client.unload_model("mnist", headers=headers),
    ]
    for call in calls:
        refused = refusal(call)
        assert refused.status() == "StatusCode.UNAUTHENTICATED", refused
        assert "API key" in refused.message()
    assert client.infer("mnist", [image_input(path.read_bytes())], headers={"x-api-key": KEY})


def test_a_message_over_the_size_limit_is_resource_exhausted(
    client: triton.InferenceServerClient,
) -> None:
    huge = np.zeros((2, 1, 1024, 1024), dtype=np.float32)  # 8 MiB; the limit here is 4 MiB
    given = triton.InferInput("input", list(huge.shape), "FP32")
    given.set_data_from_numpy(huge)
    refused = refusal(lambda: client.infer("mnist", [given], headers=AUTH))
    assert refused.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_live()  # and the gateway goes on


def test_model_api_away_is_unavailable(stack: RunningServices, tmp_path) -> None:  # noqa: ANN001
    """A gateway whose model_api does not answer: every call is UNAVAILABLE, not a hang."""
    grpc_port = free_port()
    gateway = web_api_process(
        "mnist",
        free_port(),
        f"http://127.0.0.1:{free_port()}",  # nothing listens there
        tmp_path / "web_api.log",
        MLSERVE_GRPC_PORT=str(grpc_port),
    )
    gateway = ServiceProcess(
        gateway.module, gateway.env, gateway.url + "/health/live", gateway.log
    ).start()
    try:
        with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as away:
            path, _ = samples("mnist")[0]
            for call in (
                away.is_server_live,
                lambda: away.infer("mnist", [image_input(path.read_bytes())]),
            ):
                refused = refusal(call)
                assert refused.status() == "StatusCode.UNAVAILABLE"
                assert "model_api is unavailable" in refused.message()
    finally:
        gateway.stop()


# a deadline that passes while the model is busy
def test_a_passed_deadline_is_deadline_exceeded_and_its_work_is_dropped(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    images = [encode(gradient((3000, 3000), "RGB", seed), "PNG") for seed in range(30)]
    before = model_api_metrics(stack)

    def infer(image: bytes) -> str:
        try:
            client.infer("mnist", [image_input(image)], headers=AUTH, client_timeout=0.3)
            return "OK"
        except InferenceServerException as exc:
            return exc.status()

    with ThreadPoolExecutor(len(images)) as pool:
        outcomes = Counter(pool.map(infer, images))
    assert set(outcomes) <= {"OK", "StatusCode.DEADLINE_EXCEEDED"}, outcomes
    assert outcomes["StatusCode.DEADLINE_EXCEEDED"] > 0, outcomes

    now = settled_changes(
        lambda: model_api_metrics(stack),
        before,
        [("mlserve_inferences_total", {}), ("mlserve_abandoned_total", {"outcome": "dropped"})],
    )
    inferences, dropped = now
    assert dropped > 0, (now, outcomes)
    assert inferences + dropped == len(images), (now, outcomes)  # inferred once, or dropped
    gateway = httpx.get(stack.url + "/metrics", headers=AUTH).text
    exceeded, cancelled = (
        metric(gateway, "mlserve_gateway_grpc_requests_total", method="ModelInfer", code=code)
        for code in ("DEADLINE_EXCEEDED", "CANCELLED")
    )
    # The client cancels when its deadline passes, a moment before the gateway's copy of it
    # does: most are counted as DEADLINE_EXCEEDED, any the network delayed as CANCELLED, and
    # none that never reached a handler (its deadline passed on the way in).
    counted = (exceeded, cancelled, outcomes)
    assert exceeded > 0 and exceeded + cancelled <= outcomes["StatusCode.DEADLINE_EXCEEDED"], (
        counted
    )


# the repository, under load
def test_loading_and_unloading_a_model_fails_no_call_to_another(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    files = [path.read_bytes() for path, _ in samples("mnist")]
    statuses: Counter = Counter()
    stop = threading.Event()

    def hammer() -> None:
        with triton.InferenceServerClient(stack.grpc_target) as own:
            i = 0
            while not stop.is_set():
                data = files[i % len(files)] + b"\0" * (i // len(files))  # new misses too
                try:
                    own.infer("mnist", [image_input(data)], headers=AUTH)
                    statuses["OK"] += 1
                except InferenceServerException as exc:
                    statuses[exc.status()] += 1
                i += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        client.load_model("leukemia", headers=AUTH)
        deadline = time.monotonic() + 60
        ready_in_a_row = 0
        while ready_in_a_row < 10:  # every worker has it (each follows the shared list)
            assert time.monotonic() < deadline, "leukemia never became ready everywhere"
            ready = client.is_model_ready("leukemia", headers=AUTH)
            ready_in_a_row = ready_in_a_row + 1 if ready else 0
            time.sleep(0.05)
        path, label = samples("leukemia")[0]
        result = client.infer("leukemia", [image_input(path.read_bytes())], headers=AUTH)
        config = load_model_config(MODELS_DIR, "leukemia")
        assert config.labels[int(result.as_numpy("probabilities")[0].argmax())] == label
        index = client.get_model_repository_index(headers=AUTH, as_json=True)["models"]
        assert {e["name"]: e["state"] for e in index} == {"mnist": "READY", "leukemia": "READY"}
        client.unload_model("leukemia", headers=AUTH)
        refused = refusal(lambda: client.unload_model("mnist", headers=AUTH))
        assert refused.status() == "StatusCode.FAILED_PRECONDITION"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(statuses) == {"OK"} and statuses["OK"] > 20, statuses
    deadline = time.monotonic() + 10
    while client.is_model_ready("leukemia", headers=AUTH):  # gone from every worker
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_gateway_refuses_to_start_on_a_taken_grpc_port(tmp_path) -> None:  # noqa: ANN001
    """Its workers bind with SO_REUSEPORT, which would share the port silently with another
    server that does too: the gateway checks first, and says which setting moves it."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        taken = holder.getsockname()[1]
        gateway = web_api_process(
            "mnist",
            free_port(),
            "http://127.0.0.1:9",
            tmp_path / "web_api.log",
            MLSERVE_GRPC_PORT=str(taken),
        )
        done = subprocess.run(
            [sys.executable, "-m", "web_api"],
            env=gateway.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"cannot serve gRPC on 127.0.0.1:{taken}" in done.stderr
    assert "MLSERVE_GRPC_PORT" in done.stderr


def test_the_readmes_grpc_example_runs_as_it_is(stack: RunningServices, tmp_path) -> None:  # noqa: ANN001
    """Unmodified tritonclient.grpc code: the README's example, against a gateway without a
    key (as a newcomer's stack has none), pointed at its port."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (example,) = [block for block in blocks if "tritonclient.grpc" in block]
    grpc_port = free_port()
    gateway = web_api_process(
        "mnist",
        free_port(),
        stack.model_api_url,
        tmp_path / "web_api.log",
        MLSERVE_GRPC_PORT=str(grpc_port),
    ).start()
    try:
        ran = subprocess.run(
            [sys.executable, "-c", example.replace("localhost:5001", f"127.0.0.1:{grpc_port}")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        gateway.stop()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "0"
