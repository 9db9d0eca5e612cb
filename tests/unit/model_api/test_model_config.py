from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.images import MODELS_DIR
from model_api.model_config import (
    ModelConfig,
    ModelNotFoundError,
    available_models,
    file_sha256,
    load_model_config,
)


def test_both_shipped_models_are_available() -> None:
    assert {"mnist", "leukemia"} <= set(available_models(MODELS_DIR))


@pytest.mark.parametrize("name", ["mnist", "leukemia"])
def test_shipped_configs_load(name: str) -> None:
    config = load_model_config(MODELS_DIR, name)
    assert config.name == name
    assert (MODELS_DIR / name / config.file).is_file()
    assert len(config.labels) == config.output.shape[-1]


def test_unknown_model_lists_the_available_ones() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_model_config(MODELS_DIR, "resnet")
    assert "mnist" in str(info.value) and "leukemia" in str(info.value)


def _config(**changes) -> dict:
    data = json.loads((MODELS_DIR / "mnist" / "config.json").read_text())
    data.update(changes)
    return data


def test_channels_must_match_the_colour_mode() -> None:
    data = _config()
    data["input"] = {**data["input"], "shape": [None, 3, 28, 28]}
    with pytest.raises(ValidationError, match="channel"):
        ModelConfig.model_validate(data)


def test_labels_must_match_the_output() -> None:
    with pytest.raises(ValidationError, match="label"):
        ModelConfig.model_validate(_config(labels=["a", "b", "c"]))


def test_pipeline_must_start_with_convert_and_end_with_normalize() -> None:
    data = _config()
    data["preprocess"] = data["preprocess"][1:]
    with pytest.raises(ValidationError, match="convert"):
        ModelConfig.model_validate(data)


def test_unknown_step_is_refused() -> None:
    data = _config()
    data["preprocess"] = [data["preprocess"][0], {"op": "sharpen"}, data["preprocess"][-1]]
    with pytest.raises(ValidationError):
        ModelConfig.model_validate(data)


def test_config_name_must_match_folder(tmp_path: Path) -> None:
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "config.json").write_text(json.dumps(_config()))
    with pytest.raises(ValueError, match="name is 'mnist'"):
        load_model_config(tmp_path, "digits")


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
