"""The per-model contract: `models/<name>/config.json`, read once at start-up.

A model is served by dropping a folder with `model.onnx` and this config into `models/`;
no code changes per model. The preprocessing is a list of named steps (see `preprocess.py`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlserve_common.model_folders import CONFIG_FILE, available_models
from model_api.errors import ModelNotFoundError

V2_DATATYPES = {"float32": "FP32"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """Name, shape (None = dynamic axis) and element type of a graph input or output."""

    name: str
    shape: list[int | None]
    dtype: Literal["float32"] = "float32"

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol's name of `dtype` (`FP32`)."""
        return V2_DATATYPES[self.dtype]

    @property
    def protocol_shape(self) -> list[int]:
        """`shape` with -1 for a dynamic axis, as the protocol writes it."""
        return [-1 if d is None else d for d in self.shape]


class ConvertStep(_Strict):
    """Decode any mode (palette, CMYK, 16-bit, alpha) to `L` or `RGB`; alpha is laid on white."""

    op: Literal["convert"]
    mode: Literal["L", "RGB"]


class RejectBlankStep(_Strict):
    """Refuse (422 `no_content`) an image with nothing on it: one whose brightest and darkest
    pixels differ by less than `min_range` (0-255), where any answer would be a guess."""

    op: Literal["reject_blank"]
    min_range: int = Field(24, ge=1, le=255)


class InvertIfLightBackgroundStep(_Strict):
    """Invert when the border is light: dark ink on paper becomes light ink on black."""

    op: Literal["invert_if_light_background"]
    border: int = Field(2, ge=1, description="Width in pixels of the border that is sampled.")


class AutocontrastStep(_Strict):
    """Stretch intensities so the background becomes black and the ink full white."""

    op: Literal["autocontrast"]
    cutoff: float = Field(1.0, ge=0, lt=50, description="Percent of darkest/lightest pixels cut.")


class CropToContentStep(_Strict):
    """Crop to the bounding box of pixels brighter than `threshold` (0-255); no-op if none."""

    op: Literal["crop_to_content"]
    threshold: int = Field(40, ge=0, le=255)


class FitInBoxStep(_Strict):
    """Resize, keeping the aspect ratio, so the longer side is `size` pixels."""

    op: Literal["fit_in_box"]
    size: int = Field(gt=0)


class CenterByMassStep(_Strict):
    """Paste onto a black `size`x`size` canvas so the centre of mass sits in the middle."""

    op: Literal["center_by_mass"]
    size: int = Field(gt=0)


class ResizeStep(_Strict):
    """Resize to exactly `width`x`height` (aspect ratio not kept)."""

    op: Literal["resize"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class NormalizeStep(_Strict):
    """Scale to [0, 1], then subtract `mean` and divide by `std`, per channel."""

    op: Literal["normalize"]
    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _same_length(self) -> NormalizeStep:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError("normalize: mean and std need one value per channel, std > 0")
        return self


PreprocessStep = Annotated[
    ConvertStep
    | RejectBlankStep
    | InvertIfLightBackgroundStep
    | AutocontrastStep
    | CropToContentStep
    | FitInBoxStep
    | CenterByMassStep
    | ResizeStep
    | NormalizeStep,
    Field(discriminator="op"),
]


class BatchingConfig(_Strict):
    """Dynamic batching: concurrent requests join one session run (absent: one run each)."""

    max_batch_size: int = Field(32, ge=2, le=4096)
    """Most images in one session run."""
    max_queue_delay_ms: float = Field(2.0, ge=0, le=1000)
    """How long the first image of a batch waits for company before the batch runs."""
    max_queue_size: int = Field(256, ge=1)
    """Images that may wait; past it a request gets 503 with Retry-After, never a hang."""


class ModelConfig(_Strict):
    """Everything model_api needs to know about one model, besides its weights."""

    name: str
    description: str = ""
    file: str = "model.onnx"
    input: TensorSpec
    output: TensorSpec
    labels: list[str] = Field(min_length=2)
    preprocess: list[PreprocessStep] = Field(min_length=2)
    batching: BatchingConfig | None = None
    """Off when absent: batching pays only where a session run has a fixed cost to share."""

    @field_validator("preprocess")
    @classmethod
    def _pipeline_shape(cls, steps: list[PreprocessStep]) -> list[PreprocessStep]:
        if not isinstance(steps[0], ConvertStep):
            raise ValueError("preprocess must start with a 'convert' step")
        if not isinstance(steps[-1], NormalizeStep):
            raise ValueError("preprocess must end with a 'normalize' step")
        return steps

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if len(self.input.shape) != 4:
            raise ValueError("input.shape must be NCHW, e.g. [null, 1, 28, 28]")
        channels = self.input.shape[1]
        mode = self.preprocess[0].mode  # type: ignore[union-attr]
        if channels != (1 if mode == "L" else 3):
            raise ValueError(f"input has {channels} channel(s) but preprocess converts to {mode}")
        if len(self.preprocess[-1].mean) != channels:  # type: ignore[union-attr]
            raise ValueError("normalize needs one mean/std per input channel")
        if self.output.shape[-1] not in (None, len(self.labels)):
            raise ValueError("output's last axis must have one entry per label")
        return self

    @property
    def channels(self) -> int:
        return int(self.input.shape[1])  # type: ignore[arg-type]

    @property
    def height(self) -> int:
        return int(self.input.shape[2])  # type: ignore[arg-type]

    @property
    def width(self) -> int:
        return int(self.input.shape[3])  # type: ignore[arg-type]


def load_model_config(models_dir: Path, name: str) -> ModelConfig:
    """Read and validate `models_dir/name/config.json`; unknown names list the available ones."""
    names = available_models(models_dir)
    if name not in names:
        raise ModelNotFoundError(
            f"unknown model {name!r}; available models: {', '.join(names) or '(none)'}"
            f" in {models_dir}"
        )
    data = json.loads((models_dir / name / CONFIG_FILE).read_text(encoding="utf-8"))
    config = ModelConfig.model_validate(data)
    if config.name != name:
        path = models_dir / name / CONFIG_FILE
        raise ValueError(f"{path}: name is {config.name!r}, not {name!r}")
    return config


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file: the model's version."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


FLAT_VERSION = "1"
"""The version a model folder without version sub-folders (`models/<name>/model.onnx`) has."""


def model_versions(models_dir: Path, config: ModelConfig) -> dict[str, Path]:
    """Each version of a model and its `.onnx` file, oldest first.

    Versioned layout: `models/<name>/<N>/model.onnx` (N an integer, as Triton numbers them),
    one `config.json` beside the version folders. Flat layout (`models/<name>/model.onnx`):
    one version, "1".
    """
    folder = models_dir / config.name
    numbered = sorted(
        (int(p.name), p / config.file)
        for p in folder.iterdir()
        if p.is_dir() and p.name.isdigit() and (p / config.file).is_file()
    )
    if numbered:
        return {str(number): path for number, path in numbered}
    flat = folder / config.file
    if flat.is_file():
        return {FLAT_VERSION: flat}
    raise ModelNotFoundError(f"model {config.name!r} has no {config.file} in {folder}")
