"""model_api's routes for several images, or V2 requests, in one call (what the gateway
sends under load), against a real model_api and Redis: each image answered as `/predict`
would answer it, each V2 request as `/v2/models/{name}/infer` would."""

from __future__ import annotations

import httpx
import numpy as np
import orjson

from harness.bad_inputs import png_claiming
from harness.hostile import unique_small_pngs
from harness.metrics import metric
from harness.services import ServiceProcess
from harness.v2 import image_request, output_rows, tensor_request
from mlserve_common.wire import image_batch
from mlserve_common.wire.image_batch import Item
from mlserve_common.wire.v2_wire import HEADER_LENGTH

PARAMS = {"app_type": "cli"}


def _post(model_api: ServiceProcess, items: list[Item], **params: str) -> httpx.Response:
    return httpx.post(
        model_api.url + "/v1/models/mnist/predict/batch",
        params={**PARAMS, **params},
        content=image_batch.encode_images(items),
        headers={"content-type": image_batch.IMAGES_TYPE},
    )


def _inferences(model_api: ServiceProcess) -> float:
    text = httpx.get(model_api.url + "/metrics").text
    return metric(text, "mlserve_inferences_total", model="mnist")


def _without_timings(raw: bytes) -> dict:
    return {k: v for k, v in orjson.loads(raw).items() if k not in ("timings", "cached")}


def test_each_image_gets_its_own_answer_and_a_bad_one_fails_alone(
    model_api: ServiceProcess,
) -> None:
    good = unique_small_pngs(3, seed=901)
    items = [
        Item("first-good", good[0]),
        Item("the-bad-one", png_claiming(28, 28)),  # a header and nothing after it
        Item("second-good", good[1]),
        Item("third-good", good[2]),
    ]
    response = _post(model_api, items)
    assert response.status_code == 200
    assert response.headers["content-type"] == image_batch.ANSWERS_TYPE
    answers = image_batch.decode_answers(response.content, len(items))
    assert [a.status for a in answers] == [200, 400, 200, 200]
    error = orjson.loads(answers[1].body)
    assert error["request_id"] == "the-bad-one" and error["error"]
    for image, answer in zip(good, (answers[0], answers[2], answers[3]), strict=True):
        alone = httpx.post(model_api.url + "/v1/models/mnist/predict", params=PARAMS, content=image)
        assert alone.status_code == 200 and alone.json()["cached"] is True  # the call stored it
        assert _without_timings(answer.body) == _without_timings(alone.content)
    health = httpx.get(model_api.url + "/health/ready")
    assert health.status_code == 200


def test_identical_images_in_one_call_are_inferred_once(model_api: ServiceProcess) -> None:
    (image,) = unique_small_pngs(1, seed=902)
    before = _inferences(model_api)
    answers = image_batch.decode_answers(
        _post(model_api, [Item(f"same-{i}", image) for i in range(16)]).content, 16
    )
    assert [a.status for a in answers] == [200] * 16
    assert len({orjson.loads(a.body)["label"] for a in answers}) == 1
    assert _inferences(model_api) == before + 1


def test_a_body_in_another_format_is_a_clear_400(model_api: ServiceProcess) -> None:
    response = httpx.post(
        model_api.url + "/v1/models/mnist/predict/batch", params=PARAMS, content=b"\x89PNG..."
    )
    assert response.status_code == 400
    assert "header line" in response.json()["error"]
    bad_type = _post(model_api, [Item("a", b"x")], app_type="mobile")
    assert bad_type.status_code == 422 and "app_type" in bad_type.json()["error"]
    unknown = httpx.post(
        model_api.url + "/v1/models/nope/predict/batch",
        params=PARAMS,
        content=image_batch.encode_images([Item("a", b"x")]),
    )
    assert unknown.status_code == 404


def _v2_batch(model_api: ServiceProcess, items: list[Item], path: str) -> list:
    response = httpx.post(
        model_api.url + path,
        content=image_batch.encode_images(items),
        headers={"content-type": image_batch.IMAGES_TYPE},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == image_batch.ANSWERS_TYPE
    return image_batch.decode_answers(response.content, len(items))


def _v2_item(request_id: str, request: tuple[bytes, dict[str, str]]) -> Item:
    body, headers = request
    length = headers.get(HEADER_LENGTH)
    return Item(request_id, body, None if length is None else int(length))


def test_v2_requests_in_one_call_are_each_answered_as_alone(model_api: ServiceProcess) -> None:
    images = unique_small_pngs(3, seed=903)
    requests = [
        image_request(images[0], request_id="binary-in"),
        image_request(images[1], binary=False, binary_output=True),
        tensor_request(np.full((1, 1, 28, 28), 0.5, np.float32)),
        image_request(png_claiming(28, 28)),  # damaged
        image_request(images[2], binary=False),
    ]
    items = [_v2_item(f"r{i}", request) for i, request in enumerate(requests)]
    answers = _v2_batch(model_api, items, "/v1/models/mnist/infer/batch")
    assert [a.status for a in answers] == [200, 200, 200, 400, 200]
    assert [a.header_length is not None for a in answers] == [False, True, False, False, False]
    error = orjson.loads(answers[3].body)
    assert error["request_id"] == "r3" and "image" in error["error"]
    assert orjson.loads(answers[0].body)["id"] == "binary-in"  # the request's own V2 id
    for (body, headers), answer in zip(requests, answers, strict=True):
        if answer.status != 200:
            continue
        alone = httpx.post(model_api.url + "/v2/models/mnist/infer", content=body, headers=headers)
        assert alone.status_code == 200
        assert alone.headers.get(HEADER_LENGTH) == (
            None if answer.header_length is None else str(answer.header_length)
        )
        answered = {HEADER_LENGTH: str(answer.header_length)} if answer.header_length else {}
        np.testing.assert_array_equal(
            output_rows(answer.body, answered), output_rows(alone.content, dict(alone.headers))
        )


def test_a_v2_call_to_a_version_and_its_errors(model_api: ServiceProcess) -> None:
    (image,) = unique_small_pngs(1, seed=904)
    wrong_output = orjson.loads(image_request(image, binary=False)[0])
    wrong_output["outputs"] = [{"name": "logits"}]
    items = [
        _v2_item("good", image_request(image)),
        Item("wrong-output", orjson.dumps(wrong_output)),
        Item("not-v2", b"\x89PNG"),
    ]
    answers = _v2_batch(model_api, items, "/v1/models/mnist/versions/1/infer/batch")
    assert [a.status for a in answers] == [200, 400, 400]
    assert "no output 'logits'" in orjson.loads(answers[1].body)["error"]
    assert "JSON" in orjson.loads(answers[2].body)["error"]
    unknown = httpx.post(
        model_api.url + "/v1/models/mnist/versions/9/infer/batch",
        content=image_batch.encode_images(items),
    )
    assert unknown.status_code == 404 and "9" in unknown.json()["error"]


BATCH_PATHS = [
    "/v1/models/mnist/predict/batch",
    "/v1/models/mnist/infer/batch",
    "/v1/models/mnist/versions/1/infer/batch",
]


def test_the_batch_routes_are_declared_but_hidden_from_the_schema(
    model_api: ServiceProcess,
) -> None:
    """The gateway's internal routes are in the app's route table (another method gets 405,
    not 404) and, on purpose, not in its OpenAPI schema."""
    for path in BATCH_PATHS:
        wrong_method = httpx.get(model_api.url + path)
        assert wrong_method.status_code == 405, (path, wrong_method.status_code)
    schema = httpx.get(model_api.url + "/openapi.json").json()
    assert not [path for path in schema["paths"] if path.endswith("/batch")]
    assert "/v1/models/{model_name}/predict" in schema["paths"]
