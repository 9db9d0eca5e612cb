"""The models folder's layout (stdlib only: the launcher refuses an unknown MODEL_NAME with
it before any virtualenv exists; model_api loads with it)."""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.json"
"""Each model's folder holds this file; a folder without it is not a model."""


def available_models(models_dir: Path) -> list[str]:
    """Names of the folders under `models_dir` that hold a config file."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / CONFIG_FILE).is_file())
