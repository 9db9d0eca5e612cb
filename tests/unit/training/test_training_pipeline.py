"""The training pipeline end to end on a tiny budget, so it cannot rot unnoticed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model_api.model_config import file_sha256
from training import card, evaluate, train
from training.configs import read_config
from training.export import export_onnx, parity_check
from training.nets import leukemia_net, mnist_net
from training.synth_leukemia import LABELS, make_image, write_folder


def _check_model_folder(out: Path, labels: list[str]) -> dict:
    config = read_config(out)
    assert config.labels == labels
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    figures = card.read_figures(out / "README.md")
    assert card.read_sha256(out / "README.md") == file_sha256(out / "model.onnx")
    assert figures["parity_max_abs_diff"] <= 1e-4
    return figures


@pytest.mark.slow
def test_mnist_tiny_run_trains_exports_and_documents(tmp_path):
    out = tmp_path / "mnist"
    assert (
        train.main(
            ["mnist", "--epochs", "1", "--max-train", "128", "--max-eval", "30", "--out", str(out)]
        )
        == 0
    )
    figures = _check_model_folder(out, [str(d) for d in range(10)])
    # phone photos: a whole number of tens (view v of digit i is photo v * n + i)
    assert figures["train_sources"] == {"mnist": 128, "printed": 128, "canvas": 128, "phone": 120}
    assert figures["train_n"] == 128 * 2 + 128 + 128 + 120  # real MNIST counted twice
    assert figures["heldout_n"] == figures["printed_n"] == figures["canvas_n"] == 30
    assert figures["phone_n"] == 30 and figures["phone_none_n"] == 20  # one block held out
    for key in ("rendered_png_accuracy", "printed_accuracy", "canvas_accuracy", "phone_accuracy"):
        assert 0 <= figures[key] <= 100
    labels = json.loads((out / "samples" / "labels.json").read_text(encoding="utf-8"))
    assert sorted(set(labels.values())) == [str(d) for d in range(10)] and len(labels) == 15
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "## Limitations" in text and "| Source | Held out |" in text  # template, sources
    assert (out / "confusion.png").stat().st_size < 100_000


@pytest.mark.slow
def test_leukemia_trains_on_a_folder_per_class_dataset(tmp_path):
    data = tmp_path / "cnmc"
    write_folder(data, per_class=10, seed=11, size=96, fmt="bmp")  # C-NMC ships BMPs
    out = tmp_path / "leukemia"
    assert (
        train.main(["leukemia", "--data-dir", str(data), "--epochs", "1", "--out", str(out)]) == 0
    )
    figures = _check_model_folder(out, ["all", "hem"])
    assert figures["data"] == str(data) and figures["heldout_n"] == 4  # 20 % of each class
    assert "not a diagnostic tool" in read_config(out).description.lower()
    again = evaluate.evaluate_leukemia(out, data)
    assert again["heldout_accuracy"] == figures["heldout_accuracy"]


def test_leukemia_tiny_synthetic_run(tmp_path):
    out = tmp_path / "leukemia"
    assert (
        train.main(
            ["leukemia", "--epochs", "1", "--max-train", "16", "--max-eval", "8", "--out", str(out)]
        )
        == 0
    )
    figures = _check_model_folder(out, list(LABELS))
    assert figures["train_n"] == 16 and figures["heldout_n"] == 8


def test_generator_is_deterministic_and_labelled():
    a, label_a = make_image(7, 123)
    b, label_b = make_image(7, 123)
    assert label_a == label_b and np.array_equal(np.asarray(a), np.asarray(b))
    c, _ = make_image(7, 124)
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    image, label = make_image(7, 5, label=1, size=64)
    assert label == 1 and image.size == (64, 64) and image.mode == "RGB"


@pytest.mark.parametrize("make_net, shape", [(mnist_net, (1, 28, 28)), (leukemia_net, (3, 64, 64))])
def test_export_parity_and_its_failure(tmp_path, make_net, shape):
    torch.manual_seed(0)
    net = make_net().eval()
    path = tmp_path / "model.onnx"
    graph = export_onnx(net, path, shape, {"labels": "[]"})
    batch = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    assert parity_check(graph, path, batch) <= 1e-4
    other = make_net().eval()
    torch.nn.init.normal_(other.head[-1].weight, std=5.0)
    with pytest.raises(AssertionError, match="differs"):
        parity_check(other, path, batch)


def test_card_block_is_rewritten_in_place(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Card\n\nprose\n\n{card.BEGIN}\nold\n{card.END}\n\nmore prose\n")
    card.write_block(readme, card.render_block([("Accuracy", "1 %")], {"a": 1}, "0" * 64))
    text = readme.read_text()
    assert "old" not in text and "prose" in text and "more prose" in text
    assert card.read_figures(readme) == {"a": 1}
    assert card.read_sha256(readme) == "0" * 64
