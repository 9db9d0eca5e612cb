"""The `config.json` each trained model ships with (schema: model_api.model_config.ModelConfig)."""

from __future__ import annotations

import json
from pathlib import Path

from model_api.model_config import ModelConfig

MNIST_SIZE = 28
LEUKEMIA_SIZE = 64


def mnist_config(mean: float, std: float) -> ModelConfig:
    """Photo/scan/drawing of one digit -> MNIST-style 28x28 white-on-black, centred by mass."""
    return ModelConfig.model_validate(
        {
            "name": "mnist",
            "description": (
                "Digit classifier (0-9) for handwritten, printed and canvas-drawn"
                " digits and phone photos of a digit on paper; small CNN trained on"
                " real MNIST digits, fonts, strokes and generated photos."
            ),
            "file": "model.onnx",
            "input": {"name": "input", "shape": [None, 1, MNIST_SIZE, MNIST_SIZE]},
            "output": {"name": "probabilities", "shape": [None, 10]},
            "labels": [str(d) for d in range(10)],
            "preprocess": [
                {"op": "convert", "mode": "L"},
                {"op": "reject_blank", "min_range": 24},
                # A phone photo of a digit on paper (model_api/paper.py): each step leaves an
                # image it has nothing to do on as it is, a 28 px digit at once.
                {"op": "even_light"},
                {"op": "drop_surroundings"},
                {"op": "remove_rules", "length": 0.4},
                {"op": "keep_digit", "gap": 0.15},
                {"op": "invert_if_light_background", "border": 2},
                {"op": "autocontrast", "cutoff": 0},
                {"op": "crop_to_content", "threshold": 200},
                {"op": "fit_in_box", "size": 20},
                {"op": "center_by_mass", "size": MNIST_SIZE},
                {"op": "normalize", "mean": [round(mean, 4)], "std": [round(std, 4)]},
            ],
        }
    )


SYNTHETIC_DESCRIPTION = (
    "DEMONSTRATION ONLY, trained on synthetic images: lymphoblast-like ('all') vs normal"
    " lymphocyte-like ('hem') single-cell crops. Not a diagnostic tool."
)


def leukemia_config(
    labels: list[str],
    mean: list[float],
    std: list[float],
    size: int = LEUKEMIA_SIZE,
    description: str = SYNTHETIC_DESCRIPTION,
) -> ModelConfig:
    """Single-cell smear crop (RGB) -> `size`x`size` RGB, standardised per channel."""
    return ModelConfig.model_validate(
        {
            "name": "leukemia",
            "description": description,
            "file": "model.onnx",
            "input": {"name": "input", "shape": [None, 3, size, size]},
            "output": {"name": "probabilities", "shape": [None, len(labels)]},
            "labels": labels,
            "preprocess": [
                {"op": "convert", "mode": "RGB"},
                {"op": "resize", "width": size, "height": size},
                {
                    "op": "normalize",
                    "mean": [round(m, 4) for m in mean],
                    "std": [round(s, 4) for s in std],
                },
            ],
        }
    )


def read_config(model_dir: Path) -> ModelConfig:
    """Validate `model_dir/config.json` (any folder name, unlike load_model_config)."""
    return ModelConfig.model_validate_json((model_dir / "config.json").read_text(encoding="utf-8"))


def write_config(config: ModelConfig, model_dir: Path) -> None:
    """Write the config as stable, human-readable JSON."""
    text = json.dumps(config.model_dump(mode="json", exclude_defaults=False), indent=2)
    (model_dir / "config.json").write_text(text + "\n", encoding="utf-8")
