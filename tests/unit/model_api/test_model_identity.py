"""A model's digest: what goes in (everything that shapes an answer) and what stays out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.images import MODELS_DIR
from model_api.model_config import ModelConfig, file_sha256, load_model_config
from model_api.model_identity import ANSWER_FIELDS, answer_config, folder_digests, model_digest
from model_api.preprocess import PREPROCESS_REVISION

MNIST = load_model_config(MODELS_DIR, "mnist")
WEIGHTS = file_sha256(MODELS_DIR / "mnist" / "model.onnx")


def changed(**fields: object) -> ModelConfig:
    return ModelConfig.model_validate({**MNIST.model_dump(mode="json"), **fields})


def with_step(op: str, **params: object) -> list[dict]:
    steps = MNIST.model_dump(mode="json")["preprocess"]
    return [{**step, **params} if step["op"] == op else step for step in steps]


BASE = model_digest(WEIGHTS, MNIST)


@pytest.mark.parametrize(
    "other",
    [
        changed(preprocess=with_step("fit_in_box", size=10)),  # the issue's own change
        changed(preprocess=with_step("autocontrast", cutoff=0.6)),
        changed(preprocess=[s for s in with_step("none") if s["op"] != "autocontrast"]),
        changed(labels=[*"0123456789"][::-1]),
        changed(input={**MNIST.input.model_dump(), "name": "pixels"}),
        changed(output={**MNIST.output.model_dump(), "name": "scores"}),
    ],
    ids=["fit_in_box.size", "autocontrast.cutoff", "a step fewer", "labels", "input", "output"],
)
def test_every_field_that_shapes_an_answer_changes_the_digest(other: ModelConfig) -> None:
    assert model_digest(WEIGHTS, other) != BASE


def test_the_weights_and_the_preprocessing_revision_change_the_digest() -> None:
    assert model_digest("0" * 64, MNIST) != BASE
    assert model_digest(WEIGHTS, MNIST, PREPROCESS_REVISION + 1) != BASE


@pytest.mark.parametrize(
    "other",
    [
        changed(description="another description"),
        changed(batching={"max_batch_size": 8}),
        changed(versions={"all": {}}),
        changed(file="weights.onnx"),
    ],
    ids=["description", "batching", "versions", "file"],
)
def test_fields_that_cannot_change_an_answer_keep_the_digest(other: ModelConfig) -> None:
    assert model_digest(WEIGHTS, other) == BASE


def test_defaults_written_out_or_left_out_give_one_digest() -> None:
    spelled_out = changed(preprocess=with_step("reject_blank", min_range=24))
    steps = MNIST.model_dump(mode="json")["preprocess"]
    terse = changed(
        preprocess=[{"op": "reject_blank"} if s["op"] == "reject_blank" else s for s in steps]
    )
    assert model_digest(WEIGHTS, spelled_out) == model_digest(WEIGHTS, terse) == BASE


def test_the_digest_covers_exactly_the_answer_fields() -> None:
    assert (
        set(answer_config(MNIST))
        == set(ANSWER_FIELDS)
        == {
            "input",
            "output",
            "labels",
            "preprocess",
        }
    )


def test_a_folder_gives_the_digest_of_its_files(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR / "mnist", models / "mnist")
    assert folder_digests(models, "mnist") == {"1": BASE}
    config = json.loads((models / "mnist" / "config.json").read_text())
    config["description"] = "edited"
    (models / "mnist" / "config.json").write_text(json.dumps(config))
    assert folder_digests(models, "mnist") == {"1": BASE}
    config["preprocess"] = with_step("fit_in_box", size=10)
    (models / "mnist" / "config.json").write_text(json.dumps(config))
    assert folder_digests(models, "mnist") != {"1": BASE}
