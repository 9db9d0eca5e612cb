"""model_api's settings: one typed object, read from the environment (prefix MLSERVE_)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


def default_threads() -> int:
    """CPU cores this process may use (respects taskset/cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Every knob of model_api; each has a default that works for local use."""

    model_config = SettingsConfigDict(env_prefix="MLSERVE_", protected_namespaces=())

    model_name: str = Field(
        "mnist", validation_alias=AliasChoices("MODEL_NAME", "MLSERVE_MODEL_NAME")
    )
    """Which folder of `models_dir` to serve; any other name is refused at start."""
    models_dir: Path = ROOT / "models"
    """Folder holding one sub-folder per model (`config.json` + `model.onnx`)."""
    host: str = "127.0.0.1"
    """Address to listen on (`0.0.0.0` inside a container)."""
    port: int = 8000
    """Port to listen on."""
    redis_url: str = "redis://127.0.0.1:6380/0"
    """Where the prediction cache lives; empty disables caching."""
    cache_ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    """How long a cached prediction lives."""
    redis_timeout_seconds: float = Field(0.5, gt=0)
    """Connect/read timeout of one Redis call; a slower Redis counts as down."""
    redis_retry_seconds: float = Field(1.0, gt=0)
    """While Redis is down, how often to try it again."""
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: CUDA when onnxruntime offers it and a GPU is visible, else CPU."""
    intra_op_threads: int = Field(default_factory=default_threads, ge=1)
    """ONNX Runtime threads per inference; defaults to the cores this process may use."""
    inference_workers: int = Field(2, ge=1)
    """Inferences that may run at once (each in a worker thread, off the event loop)."""
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    """Largest request body accepted; larger ones get 413 while being read."""
    max_image_pixels: int = Field(40_000_000, gt=0)
    """Largest width x height decoded; bigger images (decompression bombs) get 413 unread."""
    log_level: str = "info"
    """Python logging level."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
