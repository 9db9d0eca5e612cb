"""The per-model contract: `models/<name>/config.json`, read once at start-up.

A model is served by dropping a folder with `model.onnx` and this config into `models/`;
no code changes per model. The preprocessing is a list of named steps (see `preprocess.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mlserve_common.stdlib_only.model_folders import CONFIG_FILE, available_models
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


class PaperStep(_Strict):
    """What the steps for photographed paper share (model_api/paper.py)."""

    min_side: int = Field(64, ge=1, description="A shorter side than this: the image as it is.")


class EvenLightStep(PaperStep):
    """Divide by a smooth estimate of the paper's light, so a shadow or a gradient is not ink."""

    op: Literal["even_light"]
    kernel: float = Field(
        0.08, gt=0, le=1, description="Window of the estimate, a fraction of the short side."
    )
    depth: float = Field(
        0.4, gt=0, lt=1, description="Deepest shadow evened out, a fraction of the light around."
    )
    tolerance: int = Field(
        12, ge=0, le=255, description="Spread (0-255) of the estimate below which nothing changes."
    )


class DropSurroundingsStep(PaperStep):
    """Paint what hugs the border and is clearly darker than the paper (the table) paper."""

    op: Literal["drop_surroundings"]
    darker_by: float = Field(
        0.25, gt=0, lt=1, description="How much darker than the paper, a fraction of it."
    )
    max_area: float = Field(
        0.6, gt=0, le=1, description="Largest share of the image; more: the image as it is."
    )


class RemoveRulesStep(PaperStep):
    """Paint long thin horizontal and vertical lines (ruled, squared paper) paper, not the ink."""

    op: Literal["remove_rules"]
    length: float = Field(
        0.6, gt=0, le=1, description="Shortest line, a fraction of the width (height)."
    )
    thickness: float = Field(
        0.012, gt=0, le=0.1, description="Thickest line, a fraction of the short side."
    )
    tilt: float = Field(1.5, ge=0, le=10, description="Steepest line, degrees off the axis.")
    darker_by: float = Field(
        0.12, gt=0, lt=1, description="How much darker than the paper a line is, a fraction."
    )


class KeepDigitStep(PaperStep):
    """Keep the digit's strokes (the main one near the centre and those near it); paint the rest."""

    op: Literal["keep_digit"]
    darker_by: float = Field(
        0.2, gt=0, lt=1, description="Ink is at least this much darker than the paper, a fraction."
    )
    gap: float = Field(
        0.3, ge=0, le=2, description="Farthest stroke kept, a fraction of the digit's longer side."
    )
    min_area: float = Field(
        0.03, ge=0, le=1, description="Smallest stroke kept, a fraction of the main one's area."
    )
    line_aspect: float = Field(
        8.0, gt=1, description="Longer than thick by this: a line, dropped if thinner than ink."
    )


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
    | EvenLightStep
    | DropSurroundingsStep
    | RemoveRulesStep
    | KeepDigitStep
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


class LatestVersions(_Strict):
    """Serve the `latest` highest-numbered versions present (fewer if fewer exist)."""

    latest: int = Field(ge=1)
    """How many of the newest versions to serve."""


class SpecificVersions(_Strict):
    """Serve exactly the listed versions; one missing on disk is an error."""

    specific: list[int] = Field(min_length=1)
    """Version numbers (>= 1, distinct) that must all be present."""

    @field_validator("specific")
    @classmethod
    def _distinct_positive(cls, versions: list[int]) -> list[int]:
        if any(v < 1 for v in versions):
            raise ValueError("versions.specific: version numbers must be >= 1")
        if len(set(versions)) != len(versions):
            raise ValueError("versions.specific: version numbers must be distinct")
        return versions


class _NoOptions(_Strict):
    """`{}`: the policy it belongs to takes no options."""


class AllVersions(_Strict):
    """Serve every version present (Triton's `{"all": {}}`)."""

    all: _NoOptions = _NoOptions()
    """Always `{}`."""


VERSION_POLICY_KEYS = ("latest", "specific", "all")
"""The one key a `versions` object holds, as in Triton's `version_policy`."""


def _policy_kind(value: Any) -> str | None:
    """The tag of a version policy: its one key (None, hence a clear error, otherwise)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in VERSION_POLICY_KEYS:
            return key
    return None


VersionPolicy = Annotated[
    Annotated[LatestVersions, Tag("latest")]
    | Annotated[SpecificVersions, Tag("specific")]
    | Annotated[AllVersions, Tag("all")],
    Discriminator(
        _policy_kind,
        custom_error_type="version_policy",
        custom_error_message=(
            "versions must be an object with exactly one of the keys 'latest', 'specific', "
            'or \'all\', e.g. {"latest": 1}, {"specific": [1, 3]} or {"all": {}}'
        ),
    ),
]
"""Which of a model's numbered versions are served (Triton's `version_policy`)."""


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
    versions: VersionPolicy = LatestVersions(latest=1)
    """Which numbered versions are served; absent: the newest one (`{"latest": 1}`)."""

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


NOT_OVERRIDABLE = ("name", "versions")
"""Top-level fields a version's own `config.json` may not replace: they belong to the model."""


@dataclass(frozen=True)
class ServedVersion:
    """One served version: its weights and the config it runs with."""

    path: Path
    """The version's `.onnx` file."""
    config: ModelConfig
    """The model's config with this version's `config.json` (if any) laid over it."""


def version_config(config: ModelConfig, path: Path) -> ModelConfig:
    """`config` with the top-level fields of the version override file `path` replacing its own.

    The override is shallow (a field given replaces the model's whole field) and may not
    touch `name` or `versions`; the result is validated as a whole `ModelConfig`.
    """
    try:
        override = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(override, dict):
        raise ValueError(f"{path}: a version's config must be a JSON object")
    refused = [key for key in NOT_OVERRIDABLE if key in override]
    if refused:
        raise ValueError(
            f"{path}: a version's config may not override {', '.join(refused)} "
            "(set it in the model's own config.json)"
        )
    data = config.model_dump(mode="json")
    data.update(override)
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid version config: {exc}") from exc


def _numbered_folders(folder: Path, config: ModelConfig) -> dict[int, Path]:
    """Numbered sub-folders that hold the model's file or their own `config.json`."""
    if not folder.is_dir():
        return {}
    return {
        int(p.name): p
        for p in folder.iterdir()
        if p.is_dir()
        and p.name.isascii()
        and p.name.isdigit()
        and ((p / config.file).is_file() or (p / CONFIG_FILE).is_file())
    }


def _select(policy: VersionPolicy, present: list[int], where: str) -> list[int]:
    """The versions `policy` serves out of `present` (ascending), oldest first."""
    if isinstance(policy, LatestVersions):
        return present[-policy.latest :]
    if isinstance(policy, SpecificVersions):
        missing = sorted(set(policy.specific) - set(present))
        if missing:
            raise ModelNotFoundError(
                f"versions.specific asks for version(s) {', '.join(map(str, missing))}"
                f" not present in {where}"
                f" (present: {', '.join(map(str, present)) or 'none'})"
            )
        return sorted(policy.specific)
    return present


def served_versions(models_dir: Path, config: ModelConfig) -> dict[str, ServedVersion]:
    """The versions of a model that its `versions` policy serves, oldest (lowest) first.

    Versioned layout: `models/<name>/<N>/model.onnx` (N an integer, as Triton numbers them),
    one `config.json` beside the version folders; a version folder may hold its own
    `config.json` whose top-level fields replace the model's for that version only (see
    `version_config`). Flat layout (`models/<name>/model.onnx`, no numbered folder): one
    version, "1". The policy (default `{"latest": 1}`) then picks: the N highest numbers,
    exactly the listed ones (one missing raises `ModelNotFoundError`), or all of them.
    """
    folder = models_dir / config.name
    numbered = _numbered_folders(folder, config)
    if numbered:
        served = {}
        for number in _select(config.versions, sorted(numbered), str(folder)):
            version_dir = numbered[number]
            override = version_dir / CONFIG_FILE
            own = version_config(config, override) if override.is_file() else config
            path = version_dir / own.file
            if not path.is_file():
                raise ModelNotFoundError(
                    f"version {number} of model {config.name!r} has no {own.file} in {version_dir}"
                )
            served[str(number)] = ServedVersion(path=path, config=own)
        return served
    flat = folder / config.file
    if flat.is_file():
        where = f"{folder} (flat layout: one version, {FLAT_VERSION})"
        _select(config.versions, [int(FLAT_VERSION)], where)
        return {FLAT_VERSION: ServedVersion(path=flat, config=config)}
    raise ModelNotFoundError(f"model {config.name!r} has no {config.file} in {folder}")


def model_versions(models_dir: Path, config: ModelConfig) -> dict[str, Path]:
    """Each served version of a model and its `.onnx` file, oldest first.

    The `.onnx` files of `served_versions` (see there for the layouts). Note that the
    `versions` policy now applies: with none in config.json it is `{"latest": 1}`, so a
    folder with versions 1 and 2 serves only "2" unless it asks for `{"all": {}}`; a flat
    model (as shipped) still serves its one version, "1". A version's own `config.json` is
    not reflected here: use `served_versions` for each version's config.
    """
    return {version: sv.path for version, sv in served_versions(models_dir, config).items()}
