"""Copies of models/ with one model's dynamic batching changed, for the tests and the
benchmarks that compare a model batched and not; and a config less its steps for
photographed paper, for those that compare with and without them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import get_args

from harness import MODELS_DIR
from model_api.model_config import ModelConfig, PaperStep

PAPER_OPS = frozenset(
    get_args(step.model_fields["op"].annotation)[0] for step in PaperStep.__subclasses__()
)
"""The `op` of each step for photographed paper (model_api/paper.py)."""


def without_paper_steps(config: ModelConfig) -> ModelConfig:
    """`config` less its steps for photographed paper, every other step as it is."""
    data = config.model_dump()
    data["preprocess"] = [
        step.model_dump() for step in config.preprocess if not isinstance(step, PaperStep)
    ]
    return ModelConfig.model_validate(data)


def shipped_batching(model: str) -> dict | None:
    """The "batching" of `model`'s shipped config (None when it has none)."""
    return json.loads((MODELS_DIR / model / "config.json").read_text()).get("batching")


def copy_with_batching(
    dest: Path, model: str, batching: dict | None, *, with_samples: bool = True
) -> dict | None:
    """Copy models/ to `dest` (replacing what is there), `model`'s config with `batching` as
    its "batching" key, or without the key when `batching` is None; return the key's value
    in the shipped config (None when it has none)."""
    shutil.rmtree(dest, ignore_errors=True)
    ignore = None if with_samples else shutil.ignore_patterns("samples")
    shutil.copytree(MODELS_DIR, dest, ignore=ignore)
    path = dest / model / "config.json"
    config = json.loads(path.read_text())
    shipped = config.pop("batching", None)
    if batching is not None:
        config["batching"] = batching
    path.write_text(json.dumps(config, indent=2) + "\n")
    return shipped
