"""The committed models: graph vs config, samples, card SHA-256 and held-out figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from model_api.model_config import file_sha256, load_model_config
from model_api.preprocess import preprocess
from training import card, evaluate

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
NAMES = ["mnist", "leukemia"]


@pytest.fixture(scope="module", params=NAMES)
def model(request):
    """(name, folder, validated config, ORT session) of one shipped model."""
    name = request.param
    config = load_model_config(MODELS, name)
    session = ort.InferenceSession(
        str(MODELS / name / config.file), providers=["CPUExecutionProvider"]
    )
    return name, MODELS / name, config, session


def test_graph_matches_config(model):
    _, folder, config, session = model
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == config.input.name == "input"
    assert out.name == config.output.name == "probabilities"
    assert inp.type == out.type == "tensor(float)"
    assert not isinstance(inp.shape[0], int), "batch axis must be dynamic"
    assert inp.shape[1:] == config.input.shape[1:] == [config.channels, config.height, config.width]
    assert out.shape[1] == config.output.shape[1] == len(config.labels)
    graph = onnx.load(str(folder / config.file))
    opset = max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)
    assert (
        json.loads(dict((p.key, p.value) for p in graph.metadata_props)["labels"]) == config.labels
    )


def test_outputs_are_probabilities_for_any_batch(model):
    _, _, config, session = model
    for n in (1, 5):
        x = (
            np.random.default_rng(n)
            .standard_normal((n, config.channels, config.height, config.width))
            .astype(np.float32)
        )
        probs = session.run(["probabilities"], {"input": x})[0]
        assert probs.shape == (n, len(config.labels))
        assert np.all(probs >= 0) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_every_sample_predicts_its_label(model):
    _, folder, config, session = model
    labels = json.loads((folder / "samples" / "labels.json").read_text(encoding="utf-8"))
    assert len(labels) >= 6
    wrong = {}
    for file_name, expected in labels.items():
        assert expected in config.labels
        with Image.open(folder / "samples" / file_name) as image:
            x = preprocess(image, config)
        got = config.labels[int(session.run(["probabilities"], {"input": x})[0].argmax())]
        if got != expected:
            wrong[file_name] = got
    assert not wrong, f"mispredicted samples: {wrong}"


def test_card_sha256_matches_file(model):
    _, folder, config, _ = model
    assert card.read_sha256(folder / "README.md") == file_sha256(folder / config.file)


def test_card_documents_the_model(model):
    name, folder, _, _ = model
    text = (folder / "README.md").read_text(encoding="utf-8").lower()
    for section in (
        "## data",
        "## training recipe",
        "## input contract",
        "## limitations",
        "## evaluation",
    ):
        assert section in text
    if name == "leukemia":
        assert "synthetic" in text and "not a diagnostic tool" in text


def test_sizes():
    for name in NAMES:
        assert (MODELS / name / "model.onnx").stat().st_size < 5 * 2**20
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 20 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_evaluation_reproduces_card(name):
    figures = card.read_figures(MODELS / name / "README.md")
    if name == "mnist":
        result = evaluate.evaluate_mnist(MODELS / name)
        keys = ["heldout_accuracy", "rendered_png_accuracy"]
        assert result["heldout_accuracy"] >= 98.0 and result["rendered_png_accuracy"] >= 97.0
    else:
        result = evaluate.evaluate_leukemia(MODELS / name)
        keys = ["heldout_accuracy"]
    assert result["heldout_n"] == figures["heldout_n"]
    for key in keys:
        assert abs(result[key] - figures[key]) <= 0.5, (key, result[key], figures[key])
