"""The Open Inference Protocol through the public port, spoken by the real Triton client
(`tritonclient[http]`) and by plain httpx, against real processes: Redis, model_api (two
workers) and the gateway."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from harness.images import MODELS_DIR, samples
from harness.services import RunningServices, running_services
from model_api.imaging import decode_image
from model_api.model_config import load_model_config
from model_api.preprocess import preprocess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    with running_services(tmp_path_factory.mktemp("v2"), "mnist") as services:
        yield services


@pytest.fixture
def client(stack: RunningServices) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(stack.url.removeprefix("http://"))


def predict_probabilities(stack: RunningServices, image: bytes) -> np.ndarray:
    answer = httpx.post(stack.url + "/predict", content=image, timeout=30).json()
    return np.array(list(answer["probabilities"].values()), dtype=np.float32)


def served_tensor(data: bytes) -> np.ndarray:
    """The (1, 1, 28, 28) tensor model_api makes of an mnist image (same decode, same steps)."""
    config = load_model_config(MODELS_DIR, "mnist")
    decoded = decode_image(data, 40_000_000, target=(config.width, config.height))
    return preprocess(decoded, config)


def image_input(*images: bytes) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    return tensor


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist")
    server = client.get_server_metadata()
    assert {"binary_tensor_data", "model_repository"} <= set(server["extensions"])
    metadata = client.get_model_metadata("mnist")
    assert metadata["name"] == "mnist" and metadata["versions"] == ["1"]
    assert {"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]} in metadata["inputs"]
    assert {"name": "image", "datatype": "BYTES", "shape": [-1]} in metadata["inputs"]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]


def test_server_metadata_at_the_paths_with_and_without_the_slash(stack: RunningServices) -> None:
    """`GET /v2/` is the path open_inference_rest.yaml names; `/v2` is the one clients use."""
    for base in (stack.url, stack.model_api_url):
        plain = httpx.get(base + "/v2")
        slashed = httpx.get(base + "/v2/", follow_redirects=False)
        assert (plain.status_code, slashed.status_code) == (200, 200), base
        assert slashed.json() == plain.json() and plain.json()["name"] == "mlserve"


@pytest.mark.parametrize("where", ["input", "request"])
def test_a_json_only_client_sends_an_image_as_base64(stack: RunningServices, where: str) -> None:
    """MLServer's convention: `content_type: base64` on the BYTES input, or on the request
    for every input that names none; the answer is `/predict`'s."""
    path, label = samples("mnist")[3]
    image = path.read_bytes()
    base64_text = {"parameters": {"content_type": "base64"}}
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1]}
    tensor["data"] = [base64.b64encode(image).decode()]
    request = {"inputs": [{**tensor, **(base64_text if where == "input" else {})}]}
    request |= base64_text if where == "request" else {}
    answer = httpx.post(stack.url + "/v2/models/mnist/infer", json=request, timeout=30)
    assert answer.status_code == 200, answer.text
    row = np.array(answer.json()["outputs"][0]["data"], dtype=np.float32)
    np.testing.assert_allclose(row, predict_probabilities(stack, image), atol=1e-6)
    assert str(int(row.argmax())) == label


def test_binary_image_input_matches_predict(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    files = [path.read_bytes() for path, _ in samples("mnist")[:4]]
    output = triton.InferRequestedOutput("probabilities", binary_data=True)
    result = client.infer("mnist", [image_input(*files)], outputs=[output])
    rows = result.as_numpy("probabilities")
    assert rows.shape == (4, 10)
    for row, data, (_, label) in zip(rows, files, samples("mnist")[:4], strict=True):
        np.testing.assert_allclose(row, predict_probabilities(stack, data), atol=1e-6)
        assert str(int(row.argmax())) == label
    again = client.infer("mnist", [image_input(*files)], outputs=[output])  # from the cache
    np.testing.assert_array_equal(again.as_numpy("probabilities"), rows)


def test_fp32_tensor_input_matches_predict(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    path, _ = samples("mnist")[1]
    tensor = served_tensor(path.read_bytes())
    for binary in (True, False):
        given = triton.InferInput("input", list(tensor.shape), "FP32")
        given.set_data_from_numpy(tensor, binary_data=binary)
        rows = client.infer("mnist", [given]).as_numpy("probabilities")
        np.testing.assert_allclose(
            rows[0], predict_probabilities(stack, path.read_bytes()), atol=1e-6
        )


def test_json_only_inference_with_httpx(stack: RunningServices) -> None:
    path, label = samples("mnist")[2]
    tensor = served_tensor(path.read_bytes())
    request = {
        "id": "my-request",
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(tensor.shape),
                "data": tensor.ravel().tolist(),
            }
        ],
    }
    answer = httpx.post(stack.url + "/v2/models/mnist/infer", json=request, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "my-request" and body["model_name"] == "mnist"
    (output,) = body["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [1, 10]
    row = np.array(output["data"], dtype=np.float32)
    np.testing.assert_allclose(row, predict_probabilities(stack, path.read_bytes()), atol=1e-6)
    assert str(int(row.argmax())) == label


@pytest.mark.parametrize(
    ("model", "name", "shape", "datatype", "status", "message"),
    [
        ("resnet50", "input", [1, 1, 28, 28], "FP32", 404, "not served"),
        ("mnist", "input", [1, 1, 27, 28], "FP32", 400, "has shape"),
        ("mnist", "input", [1, 1, 28, 28], "FP64", 400, "is FP32, not FP64"),
        ("mnist", "pixels", [1, 1, 28, 28], "FP32", 400, "no input 'pixels'"),
    ],
)
def test_errors_are_4xx_with_a_message(
    client: triton.InferenceServerClient,
    model: str,
    name: str,
    shape: list[int],
    datatype: str,
    status: int,
    message: str,
) -> None:
    given = triton.InferInput(name, shape, datatype)
    given.set_data_from_numpy(np.zeros(shape, dtype=triton.triton_to_np_dtype(datatype)))
    with pytest.raises(InferenceServerException) as refused:
        client.infer(model, [given])
    assert refused.value.status() == str(status)
    assert message in refused.value.message()


def test_a_damaged_image_is_a_400_and_the_error_is_json(stack: RunningServices) -> None:
    request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["nope"]}]}
    answer = httpx.post(stack.url + "/v2/models/mnist/infer", json=request, timeout=30)
    assert answer.status_code == 415
    assert answer.json()["error"]


def test_loading_and_unloading_a_model_fails_no_request_to_another(
    stack: RunningServices, client: triton.InferenceServerClient
) -> None:
    files = [path.read_bytes() for path, _ in samples("mnist")]
    statuses: Counter = Counter()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while not stop.is_set():
                data = files[i % len(files)] + b"\0" * (i // len(files))  # new misses too
                statuses[http.post(stack.url + "/predict", content=data).status_code] += 1
                i += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        client.load_model("leukemia")
        deadline = time.monotonic() + 60
        ready_in_a_row = 0
        while ready_in_a_row < 10:  # every worker has it (each follows the shared list)
            assert time.monotonic() < deadline, "leukemia never became ready everywhere"
            ready_in_a_row = ready_in_a_row + 1 if client.is_model_ready("leukemia") else 0
            time.sleep(0.05)
        path, label = samples("leukemia")[0]
        result = client.infer("leukemia", [image_input(path.read_bytes())])
        config = load_model_config(MODELS_DIR, "leukemia")
        assert config.labels[int(result.as_numpy("probabilities")[0].argmax())] == label
        index = {e["name"]: e["state"] for e in client.get_model_repository_index()}
        assert index == {"mnist": "READY", "leukemia": "READY"}
        client.unload_model("leukemia")
        with pytest.raises(InferenceServerException, match="409"):
            client.unload_model("mnist")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(statuses) == {200} and statuses[200] > 20, statuses
    deadline = time.monotonic() + 10
    while client.is_model_ready("leukemia"):  # gone from every worker
        assert time.monotonic() < deadline
        time.sleep(0.1)
