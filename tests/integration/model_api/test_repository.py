"""The model repository in one model_api (TestClient runs the lifespan; real models, real
Redis): several models, versioned folders, load and unload through the V2 routes."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import onnx
import pytest
from fastapi.testclient import TestClient

from harness.images import MODELS_DIR, samples
from harness.redis_server import RedisServer
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
