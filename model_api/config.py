"""model_api's settings: one typed object, read from the environment (prefix MLSERVE_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from mlserve_common.runtime import cores
from mlserve_common.runtime.http_limits import HttpLimitSettings
from mlserve_common.runtime.logs import LogSettings
from mlserve_common.wire.redis_pipe import RedisUrl

ROOT = Path(__file__).resolve().parent.parent


class Settings(HttpLimitSettings, LogSettings):
    """Every knob of model_api; each has a default that works for local use."""

    model_config = SettingsConfigDict(
        env_prefix="MLSERVE_", protected_namespaces=(), env_ignore_empty=True
    )

    model_name: str = Field(
        "mnist", validation_alias=AliasChoices("MODEL_NAME", "MLSERVE_MODEL_NAME")
    )
    """Which folder of `models_dir` to serve; any other name is refused at start."""
    models: str = ""
    """More models to serve beside `model_name`: names separated by commas, or `all` for
    every folder of `models_dir` (`MLSERVE_MODELS`). Empty: `model_name` alone."""
    models_dir: Path = ROOT / "models"
    """Folder holding one sub-folder per model (`config.json` + `model.onnx`)."""
    host: str = "127.0.0.1"
    """Address to listen on (`0.0.0.0` inside a container)."""
    port: int = 8000
    """Port to listen on."""
    redis_url: RedisUrl = "redis://127.0.0.1:6380/0"
    """Where the prediction cache lives; empty disables caching."""
    cache_ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    """How long a cached prediction lives."""
    redis_timeout_seconds: float = Field(0.5, gt=0)
    """Connect/read timeout of one Redis call; a slower Redis counts as down."""
    redis_retry_seconds: float = Field(1.0, gt=0)
    """While Redis is down, how often to try it again."""
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: CUDA when onnxruntime offers it and a GPU is visible, else CPU."""
    workers: int = Field(
        default_factory=lambda: cores.available_cores(),
        ge=1,
        validation_alias=AliasChoices("MLSERVE_MODEL_API_WORKERS", "MLSERVE_WORKERS"),
    )
    """Worker processes, each with its own ONNX Runtime session; defaults to the cores
    available (affinity and cgroup quota). `MLSERVE_MODEL_API_WORKERS` beats `MLSERVE_WORKERS`."""
    intra_op_threads: int | None = Field(None, ge=1)
    """ONNX Runtime threads per session; default: the cores divided among the workers."""
    inference_workers: int = Field(2, ge=1)
    """Threads per worker that decode, preprocess and (unbatched) infer in parallel."""
    singleflight_lease_ms: int = Field(5000, ge=100)
    """Identical misses in other workers or replicas wait for the one holding this Redis
    lease; if no answer comes within it (say the holder crashed), they infer themselves."""
    reload_timeout_seconds: float = Field(30.0, gt=0)
    """How long a load call waits for every worker and replica to follow a reload before
    it answers 503 `reload_incomplete` (the reload goes on where it reached)."""
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    """Largest request body accepted; larger ones get 413 while being read."""
    max_image_pixels: int = Field(40_000_000, gt=0)
    """Largest width x height decoded; bigger images (decompression bombs) get 413 unread."""
    max_decode_bytes: int = Field(128 * 1024 * 1024, gt=0)
    """Most memory one image's decode may take (pixels x bytes per pixel, after a JPEG's
    reduced-scale decode); larger ones get 413 from their header, never decoded."""
    large_decode_bytes: int = Field(8 * 1024 * 1024, gt=0)
    """Images whose decode takes more than this wait for their own lane, so a few big
    images never hold every decoding thread while small ones queue behind them."""
    large_decode_threads: int = Field(1, ge=1)
    """Threads per worker that decode large images (see `large_decode_bytes`)."""
    inline_max_pixels: int = Field(4096, ge=0)
    """Images of at most this many pixels (width x height, from the header) are decoded,
    preprocessed and, unless batched, inferred on the event loop: for mnist's 28x28 digits
    the hop to a worker thread and back cost more than that work. 0: every image takes a
    thread."""

    @model_validator(mode="after")
    def _split_the_cores(self) -> Settings:
        if self.intra_op_threads is None:
            self.intra_op_threads = cores.threads_per_worker(self.workers)
        return self

    def models_to_load(self) -> list[str]:
        """`model_name` first, then the others `models` names (all folders for `all`)."""
        from model_api.model_config import available_models

        named = [n.strip() for n in self.models.split(",") if n.strip()]
        if named == ["all"]:
            named = available_models(self.models_dir)
        return list(dict.fromkeys([self.model_name, *named]))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
