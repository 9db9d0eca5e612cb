"""Request and response models of model_api's HTTP API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class AppType(StrEnum):
    """Which front end asks: part of the cache key, so each keeps its own entries."""

    cli = "cli"
    ui = "ui"


class Prediction(BaseModel):
    """What the model said about one image; this is also what the cache stores."""

    model: str = Field(description="Name of the model that answered.")
    version: str = Field(description="The model version that answered (its folder: `1`, ...).")
    digest: str = Field(
        description="The model's digest: SHA-256 over its .onnx, the config fields that shape "
        "an answer and the preprocessing revision. Cached answers are keyed by it."
    )
    sha256: str = Field(description="SHA-256 of the image's exact bytes: what was answered.")
    label: str = Field(description="The most probable class.")
    class_index: int = Field(ge=0, description="Index of `label` in the model's labels.")
    confidence: float = Field(ge=0, le=1, description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Probability of every class, by label.")


class Timings(BaseModel):
    """Milliseconds spent in each stage of this request (0 for stages skipped)."""

    cache_lookup_ms: float = 0.0
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    total_ms: float = 0.0


class PredictResponse(Prediction):
    """A prediction plus how it was obtained."""

    cached: bool = Field(description="True when answered from the cache, without inference.")
    app_type: AppType
    timings: Timings


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """What is served: name, version, digest, tensors, labels and the execution provider."""

    name: str
    version: str
    """The version's folder name (`1` for a folder without version sub-folders)."""
    digest: str
    """SHA-256 over everything that shapes an answer (see `model_api.model_identity`)."""
    description: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    labels: list[str]
    provider: str
    preprocess: list[dict]


class ModelList(BaseModel):
    models: list[ModelMetadata]


class Liveness(BaseModel):
    status: str = "alive"


class Readiness(BaseModel):
    """`ready` once the model is loaded; `cache` is ok, degraded (Redis down) or disabled."""

    status: str
    model: str
    version: str | None = None
    digest: str | None = None
    provider: str | None = None
    cache: str

    @classmethod
    def loading(cls, model: str) -> Readiness:
        """While the start-up models load (answered with 503)."""
        return cls(status="loading", model=model, cache="unknown")
