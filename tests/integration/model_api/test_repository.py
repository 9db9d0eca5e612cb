"""The model repository in one model_api (TestClient runs the lifespan; real models, real
Redis): several models, versioned folders, load and unload through the V2 routes."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import onnx
import pytest
import redis
from fastapi.testclient import TestClient

from harness.images import MODELS_DIR, samples
from harness.redis_server import RedisServer
from model_api import reload_bus
from model_api.config import Settings
from model_api.main import create_app
from model_api.model_identity import folder_digests


def client_for(models_dir: Path, redis_url: str, **overrides) -> TestClient:
    settings = Settings(model_name="mnist", models_dir=models_dir, redis_url=redis_url, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture
def versioned(tmp_path: Path) -> Path:
    """models/ with mnist in two numbered versions (the second a different file), both
    served (`versions: all`), and leukemia flat, as shipped."""
    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder, ignore=shutil.ignore_patterns("samples"))
    config_path = folder / "mnist" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "versions": {"all": {}}}))
    flat = folder / "mnist" / "model.onnx"
    for version in ("1", "2"):
        (folder / "mnist" / version).mkdir()
        shutil.copy(flat, folder / "mnist" / version / "model.onnx")
    second = onnx.load(folder / "mnist" / "2" / "model.onnx")
    second.doc_string = "version 2"  # the same graph, another file: another digest
    onnx.save(second, folder / "mnist" / "2" / "model.onnx")
    flat.unlink()
    return folder


def predict_v2(client: TestClient, model: str, version: str | None = None) -> dict:
    """A JSON-only V2 inference of the model's first sample (BYTES as base64 text)."""
    path, _ = samples(model)[0]
    route = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    request = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(path.read_bytes()).decode()],
                "parameters": {"content_type": "base64"},
            }
        ]
    }
    response = client.post(route, json=request)
    assert response.status_code == 200, response.text
    return response.json()


def test_versioned_folders_serve_every_version_and_the_latest_by_default(
    versioned: Path, redis_server: RedisServer
) -> None:
    with client_for(versioned, redis_server.url) as client:
        metadata = client.get("/v2/models/mnist").json()
        assert metadata["versions"] == ["1", "2"]
        assert predict_v2(client, "mnist")["model_version"] == "2"
        assert predict_v2(client, "mnist", "1")["model_version"] == "1"
        missing = client.get("/v2/models/mnist/versions/3/ready")
        assert missing.status_code == 404 and "versions: 1, 2" in missing.json()["error"]
        metadata = client.get("/v1/models/mnist").json()
        assert metadata["version"] == "2"
        assert metadata["digest"] == folder_digests(versioned, "mnist")["2"]


def test_mlserve_models_loads_more_than_model_name(redis_server: RedisServer) -> None:
    with client_for(MODELS_DIR, redis_server.url, models="leukemia") as client:
        names = [m["name"] for m in client.get("/v1/models").json()["models"]]
        assert names == ["leukemia", "mnist"]
        _, label = samples("leukemia")[0]
        answer = predict_v2(client, "leukemia")
        probabilities = answer["outputs"][0]["data"]
        assert ["all", "hem"][probabilities.index(max(probabilities))] == label
    with client_for(MODELS_DIR, redis_server.url, models="all") as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        index = client.post("/v2/repository/index").json()
        assert {e["name"]: e["state"] for e in index} == {"leukemia": "READY", "mnist": "READY"}


def test_load_and_unload_in_one_process(redis_server: RedisServer) -> None:
    with client_for(MODELS_DIR, redis_server.url) as client:
        assert client.get("/v2/models/leukemia/ready").status_code == 404
        index = {e["name"]: e for e in client.post("/v2/repository/index").json()}
        assert index["leukemia"]["state"] == "UNAVAILABLE"
        assert client.post("/v2/repository/models/leukemia/load").status_code == 200
        assert client.get("/v2/models/leukemia/ready").json()["ready"] is True
        predict_v2(client, "leukemia")
        ready_only = client.post("/v2/repository/index", json={"ready": True}).json()
        assert sorted(e["name"] for e in ready_only) == ["leukemia", "mnist"]
        assert client.post("/v2/repository/models/leukemia/unload").status_code == 200
        assert client.get("/v2/models/leukemia/ready").status_code == 404
        refused = client.post("/v2/repository/models/mnist/unload")
        assert refused.status_code == 409 and "MODEL_NAME" in refused.json()["error"]
        unknown = client.post("/v2/repository/models/resnet50/load")
        assert unknown.status_code == 404 and "available" in unknown.json()["error"]
        predict_v2(client, "mnist")  # served throughout


def fit_in_box(size: int) -> list[dict]:
    """mnist's shipped preprocessing with another `fit_in_box` size."""
    steps = json.loads((MODELS_DIR / "mnist" / "config.json").read_text())["preprocess"]
    return [{**s, "size": size} if s["op"] == "fit_in_box" else s for s in steps]


@pytest.fixture
def two_preprocessings(tmp_path: Path) -> Path:
    """mnist in versions 1 and 2: the same weights, version 2 with its own preprocessing
    (a `config.json` in its folder), both served (`latest: 2`)."""
    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder, ignore=shutil.ignore_patterns("samples"))
    mnist = folder / "mnist"
    for version in ("1", "2"):
        (mnist / version).mkdir()
        shutil.copy(mnist / "model.onnx", mnist / version / "model.onnx")
    (mnist / "model.onnx").unlink()
    (mnist / "2" / "config.json").write_text(json.dumps({"preprocess": fit_in_box(10)}))
    config = json.loads((mnist / "config.json").read_text())
    (mnist / "config.json").write_text(json.dumps({**config, "versions": {"latest": 2}}))
    return folder


def set_versions(models: Path, policy: dict) -> None:
    path = models / "mnist" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "versions": policy}))


def test_two_versions_answer_with_their_own_model_and_their_own_cache_entries(
    two_preprocessings: Path, redis_server: RedisServer
) -> None:
    digests = folder_digests(two_preprocessings, "mnist")
    assert digests["1"] != digests["2"]  # the same weights: the config tells them apart
    image, _ = samples("mnist")[0]
    with client_for(two_preprocessings, redis_server.url) as client:
        first = client.post("/v1/models/mnist/predict", content=image.read_bytes()).json()
        assert (first["version"], first["digest"]) == ("2", digests["2"])  # the newest
        answers = {v: predict_v2(client, "mnist", v) for v in ("1", "2", "1", "2")}
        for version in ("1", "2"):
            assert answers[version]["model_version"] == version
            assert answers[version]["parameters"]["digest"] == digests[version]
            metadata = client.get(f"/v2/models/mnist/versions/{version}").json()
            assert metadata["parameters"]["digest"] == digests[version]
        # Each version's answer is its own, from the cache or not: they never mix.
        one, two = (answers[v]["outputs"][0]["data"] for v in ("1", "2"))
        assert one != two
        alone = predict_v2(client, "mnist")  # the latest, again: version 2's own entry
        assert alone["outputs"][0]["data"] == two
        assert client.get("/v2/models/mnist/versions/3/ready").status_code == 404

        set_versions(two_preprocessings, {"specific": [1]})
        assert client.post("/v2/repository/models/mnist/load").status_code == 200
        unserved = client.post(
            "/v2/models/mnist/versions/2/infer",
            json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["x"]}]},
        )
        assert unserved.status_code == 404 and "versions: 1" in unserved.json()["error"]
        now = client.post("/v1/models/mnist/predict", content=image.read_bytes()).json()
        assert (now["version"], now["digest"]) == ("1", digests["1"])
        assert now["probabilities"] != first["probabilities"]


def test_a_reload_that_fails_keeps_the_model_it_would_replace(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("samples"))
    with client_for(models, redis_server.url) as client:
        before = client.get("/v1/models/mnist").json()["digest"]
        (models / "mnist" / "config.json").write_text('{"name": "mnist", "labels": []}')
        refused = client.post("/v2/repository/models/mnist/load")
        assert refused.status_code == 422 and "failed to load" in refused.json()["error"]
        assert client.get("/v1/models/mnist").json()["digest"] == before  # serves on
        index = {e["name"]: e for e in client.post("/v2/repository/index").json()}
        assert index["mnist"]["state"] == "READY" and "reload failed" in index["mnist"]["reason"]
        predict_v2(client, "mnist")


def test_a_reload_a_listener_does_not_confirm_answers_503(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A listener on the reload channel that never confirms (a worker stuck elsewhere): the
    call says so rather than answer 200 while the old model may still be served there."""
    stuck = redis.Redis.from_url(redis_server.url).pubsub()
    stuck.subscribe(reload_bus.CHANNEL)
    try:
        with client_for(MODELS_DIR, redis_server.url, reload_timeout_seconds=0.5) as client:
            answer = client.post("/v2/repository/models/mnist/load")
            assert answer.status_code == 503 and answer.json()["code"] == "reload_incomplete"
            assert "1 of 2 model_api workers confirmed" in answer.json()["error"]
            assert answer.headers["retry-after"] == "1"
            stuck.unsubscribe()
            stuck.get_message(timeout=1)
            assert client.post("/v2/repository/models/mnist/load").status_code == 200
    finally:
        stuck.close()
