"""The dataplane on plain values, without an app or HTTP: bytes and names in, answers or
`MLServeError`s out (real models, real Redis). What another front-end (gRPC) would call."""

from __future__ import annotations

import ast
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from harness.images import samples
from harness.redis_server import RedisServer
from mlserve_common.runtime.errors import MLServeError
from mlserve_common.wire import image_batch
from model_api.cache import PredictionCache
from model_api.config import Settings
from model_api.dataplane import DataPlane
from model_api.repository import ModelRepository

ROOT = Path(__file__).resolve().parents[3]
HTTP_FREE = ["dataplane.py", "v2_inputs.py", "predictor.py", "service.py", "repository.py"]


@contextlib.asynccontextmanager
async def attached(redis_url: str) -> AsyncIterator[DataPlane]:
    """A dataplane over a started repository, as model_api's lifespan makes it."""
    settings = Settings(model_name="mnist", redis_url=redis_url)
    cache = PredictionCache(settings.redis_url, 60, 1.0, 1.0)
    await cache.start()
    repository = ModelRepository(settings, cache)
    await repository.start()
    plane = DataPlane(settings.model_name, settings.max_body_bytes)
    plane.attach(repository)
    try:
        yield plane
    finally:
        plane.attach(None)
        await repository.close()
        await cache.close()


def v2_body(image: bytes) -> bytes:
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1]}
    data = {"data": [base64.b64encode(image).decode()], "parameters": {"content_type": "base64"}}
    return orjson.dumps({"inputs": [{**tensor, **data}]})


async def test_predict_and_v2_give_the_same_probabilities(redis_server: RedisServer) -> None:
    async with attached(redis_server.url) as plane:
        path, label = samples("mnist")[0]
        image = path.read_bytes()
        first = orjson.loads(await plane.predict("mnist", image, "cli"))
        again = orjson.loads(await plane.predict("mnist", image, "cli"))
        assert (first["label"], first["cached"], again["cached"]) == (label, False, True)
        v2 = await plane.infer_v2("mnist", None, v2_body(image), None)
        assert v2.header_length is None
        (output,) = orjson.loads(v2.body)["outputs"]
        assert output["data"] == pytest.approx(list(first["probabilities"].values()), abs=1e-6)
        stored = orjson.loads(await plane.stored("mnist", first["sha256"], "cli"))
        assert stored["probabilities"] == first["probabilities"]


async def test_batches_answer_each_item_as_alone(redis_server: RedisServer) -> None:
    async with attached(redis_server.url) as plane:
        (good, label), _ = samples("mnist")[:2]
        items = [
            image_batch.Item("r-good", good.read_bytes()),
            image_batch.Item("r-bad", b"not an image"),
        ]
        body = image_batch.encode_images(items)
        answers = image_batch.decode_answers(await plane.predict_items("mnist", body, "cli"), 2)
        assert [a.status for a in answers] == [200, 415]
        assert orjson.loads(answers[0].body)["label"] == label
        assert orjson.loads(answers[1].body)["request_id"] == "r-bad"
        v2 = image_batch.encode_images([image_batch.Item("r-v2", v2_body(good.read_bytes()))])
        (answer,) = image_batch.decode_answers(await plane.infer_v2_items("mnist", "1", v2), 1)
        assert answer.status == 200


async def test_errors_are_mlserve_errors(redis_server: RedisServer) -> None:
    async with attached(redis_server.url) as plane:
        cases = [
            (plane.metadata, ("leukemia",), 404),
            (plane.v2_metadata, ("mnist", "7"), 404),
            (plane.model_ready, ("nope",), 404),
        ]
        for call, args, status in cases:
            with pytest.raises(MLServeError) as raised:
                call(*args)
            assert raised.value.status_code == status
        wrong_input = orjson.dumps(
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [0.5]}]}
        )
        with pytest.raises(MLServeError, match="has no input 'x'"):
            await plane.infer_v2("mnist", None, wrong_input, None)
        with pytest.raises(MLServeError) as raised:
            await plane.stored("mnist", "0" * 64, "cli")
        assert raised.value.code == "not_cached"


async def test_health_and_metadata(redis_server: RedisServer) -> None:
    async with attached(redis_server.url) as plane:
        assert plane.ready() and plane.readiness().status == "ready"
        assert [m.name for m in plane.models().models] == ["mnist"]
        assert plane.v2_metadata("mnist")["versions"] == ["1"]
        assert plane.model_ready("mnist", "1") == {"name": "mnist", "version": "1", "ready": True}
        assert [e["name"] for e in plane.index(only_ready=True)] == ["mnist"]


def test_an_unattached_plane_says_loading() -> None:
    plane = DataPlane("mnist", 1024)
    assert plane.readiness().status == "loading" and not plane.ready()
    with pytest.raises(MLServeError) as raised:
        plane.models()
    assert raised.value.code == "model_not_ready"


@pytest.mark.parametrize("module", HTTP_FREE)
def test_the_request_path_below_the_routes_imports_no_http_framework(module: str) -> None:
    tree = ast.parse((ROOT / "model_api" / module).read_text())
    imported = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        )
    ]
    framework = [n for n in imported if n and n.split(".")[0] in {"fastapi", "starlette"}]
    assert framework == [], f"model_api/{module} imports {framework}: keep HTTP in the routes"
