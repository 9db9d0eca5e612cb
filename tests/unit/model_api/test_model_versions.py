"""Version policies (Triton's `version_policy`) and per-version config overrides, on real
model folders in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.images import MODELS_DIR
from model_api.model_config import (
    AllVersions,
    LatestVersions,
    ModelConfig,
    ModelNotFoundError,
    ServedVersion,
    SpecificVersions,
    load_model_config,
    model_versions,
    served_versions,
)

SHIPPED = json.loads((MODELS_DIR / "mnist" / "config.json").read_text())


def make_model(
    models_dir: Path, versions: list[int] | None, policy: dict | None = None
) -> ModelConfig:
    """models_dir/mnist with the shipped config (plus `policy`) and the shipped weights in
    each numbered folder of `versions` (None: flat, `mnist/model.onnx`)."""
    folder = models_dir / "mnist"
    folder.mkdir(parents=True)
    data = dict(SHIPPED)
    if policy is not None:
        data["versions"] = policy
    (folder / "config.json").write_text(json.dumps(data))
    weights = MODELS_DIR / "mnist" / "model.onnx"
    if versions is None:
        shutil.copy(weights, folder / "model.onnx")
    for version in versions or []:
        (folder / str(version)).mkdir()
        shutil.copy(weights, folder / str(version) / "model.onnx")
    return load_model_config(models_dir, "mnist")


def test_default_policy_is_latest_one(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2])
    assert config.versions == LatestVersions(latest=1)
    served = served_versions(tmp_path, config)
    assert list(served) == ["2"]
    assert served["2"] == ServedVersion(path=tmp_path / "mnist" / "2" / "model.onnx", config=config)
    assert model_versions(tmp_path, config) == {"2": tmp_path / "mnist" / "2" / "model.onnx"}


def test_latest_two_of_three_oldest_first(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2, 10], {"latest": 2})
    assert list(served_versions(tmp_path, config)) == ["2", "10"]  # numeric, not text, order


def test_latest_more_than_present_serves_what_there_is(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2], {"latest": 5})
    assert list(served_versions(tmp_path, config)) == ["1", "2"]


def test_specific_versions(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2, 3], {"specific": [3, 1]})
    assert config.versions == SpecificVersions(specific=[3, 1])
    served = served_versions(tmp_path, config)
    assert list(served) == ["1", "3"]
    assert served["3"].path == tmp_path / "mnist" / "3" / "model.onnx"


def test_specific_version_missing_on_disk_is_named(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2], {"specific": [1, 3, 4]})
    with pytest.raises(ModelNotFoundError) as info:
        served_versions(tmp_path, config)
    message = str(info.value)
    assert "3, 4" in message and str(tmp_path / "mnist") in message


def test_all_versions(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2, 3], {"all": {}})
    assert config.versions == AllVersions()
    assert list(served_versions(tmp_path, config)) == ["1", "2", "3"]


def test_flat_layout_is_version_one(tmp_path: Path) -> None:
    for policy in (None, {"latest": 3}, {"specific": [1]}, {"all": {}}):
        models_dir = tmp_path / str(policy)
        config = make_model(models_dir, None, policy)
        assert served_versions(models_dir, config) == {
            "1": ServedVersion(path=models_dir / "mnist" / "model.onnx", config=config)
        }


def test_flat_layout_with_specific_other_versions_is_refused(tmp_path: Path) -> None:
    config = make_model(tmp_path, None, {"specific": [2]})
    with pytest.raises(ModelNotFoundError, match="version\\(s\\) 2 .*flat layout"):
        served_versions(tmp_path, config)


def test_no_version_at_all(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1])
    shutil.rmtree(tmp_path / "mnist" / "1")
    with pytest.raises(ModelNotFoundError, match="has no model.onnx"):
        served_versions(tmp_path, config)


def test_version_config_overrides_preprocess_for_that_version_only(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1, 2], {"all": {}})
    preprocess = [
        {"op": "convert", "mode": "L"},
        {"op": "resize", "width": 28, "height": 28},
        {"op": "normalize", "mean": [0.5], "std": [0.5]},
    ]
    (tmp_path / "mnist" / "2" / "config.json").write_text(json.dumps({"preprocess": preprocess}))
    served = served_versions(tmp_path, config)
    assert served["1"].config == config
    second = served["2"].config
    assert [step.op for step in second.preprocess] == ["convert", "resize", "normalize"]
    assert second.model_copy(update={"preprocess": config.preprocess}) == config
    assert served["2"].path == tmp_path / "mnist" / "2" / "model.onnx"  # the same weights file


def test_version_config_is_validated_as_a_whole(tmp_path: Path) -> None:
    config = make_model(tmp_path, [1])
    path = tmp_path / "mnist" / "1" / "config.json"
    path.write_text(json.dumps({"labels": ["a", "b", "c"]}))  # 10 outputs, 3 labels
    with pytest.raises(ValueError, match="label") as info:
        served_versions(tmp_path, config)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("field", ["name", "versions"])
def test_version_config_may_not_override_name_or_versions(tmp_path: Path, field: str) -> None:
    config = make_model(tmp_path, [1])
    path = tmp_path / "mnist" / "1" / "config.json"
    path.write_text(json.dumps({field: SHIPPED["name"] if field == "name" else {"all": {}}}))
    with pytest.raises(ValueError, match=f"may not override {field}") as info:
        served_versions(tmp_path, config)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"latest": 0}, "greater than or equal to 1"),
        ({"latest": 1, "specific": [1]}, "exactly one of the keys 'latest', 'specific'"),
        ({"newest": 1}, "exactly one of the keys 'latest', 'specific'"),
        ({}, "exactly one of the keys"),
        ({"specific": []}, "at least 1 item"),
        ({"specific": [1, 1]}, "distinct"),
        ({"specific": [0]}, ">= 1"),
        ({"all": {"x": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_policy_is_refused_readably(policy: dict, words: str) -> None:
    with pytest.raises(ValidationError, match="versions") as info:
        ModelConfig.model_validate({**SHIPPED, "versions": policy})
    assert words in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "leukemia"])
def test_shipped_models_still_load_and_serve_version_one(name: str) -> None:
    config = load_model_config(MODELS_DIR, name)
    assert config.versions == LatestVersions(latest=1)
    assert model_versions(MODELS_DIR, config) == {"1": MODELS_DIR / name / config.file}
