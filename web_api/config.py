"""web_api's settings: one typed object for both front ends (prefix MLSERVE_)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mlserve_common.runtime import cores
from mlserve_common.runtime.http_limits import HttpLimitSettings
from mlserve_common.runtime.logs import LogSettings
from mlserve_common.wire.redis_pipe import RedisUrl


class Settings(HttpLimitSettings, LogSettings):
    """Every knob of web_api; each has a default that works for local use."""

    model_config = SettingsConfigDict(
        env_prefix="MLSERVE_", protected_namespaces=(), env_ignore_empty=True
    )

    app_type: Literal["cli", "ui"] = Field(
        "cli", validation_alias=AliasChoices("APP_TYPE", "MLSERVE_APP_TYPE")
    )
    """`cli`: the FastAPI gateway; `ui`: the Streamlit app. Both listen on `web_port`."""
    model_name: str = Field(
        "mnist", validation_alias=AliasChoices("MODEL_NAME", "MLSERVE_MODEL_NAME")
    )
    """The model model_api serves; `/predict` goes to it."""
    model_api_url: str = "http://127.0.0.1:8000"
    """Base URL of model_api (inside Docker: http://model_api:8000)."""
    host: str = "127.0.0.1"
    """Address to listen on (`0.0.0.0` inside a container)."""
    web_port: int = 5000
    """The public port."""
    grpc_port: int = Field(5001, ge=0, le=65535)
    """The gateway's second public port (cli only): the Open Inference Protocol over gRPC,
    for `tritonclient.grpc`; 0: no gRPC."""
    grpc_max_streams: int = Field(100, ge=1)
    """gRPC calls one connection may carry at once (HTTP/2 streams)."""
    grpc_max_calls: int = Field(256, ge=1)
    """gRPC calls one gateway worker holds at once; more get RESOURCE_EXHAUSTED. With the
    largest message (`max_body_bytes`) this bounds the memory calls hold."""
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    """Largest upload accepted; larger ones get 413 while being read."""
    model_api_timeout_seconds: float = Field(10.0, gt=0)
    """How long to wait for model_api's answer before 504."""
    model_api_connect_timeout_seconds: float = Field(2.0, gt=0)
    """How long to wait for a connection to model_api before 503."""
    model_api_idle_seconds: float = Field(30.0, gt=0)
    """Idle connections to model_api are dropped after this; keep it shorter than model_api's
    `MLSERVE_HTTP_KEEP_ALIVE_SECONDS` (75), so model_api never closes one under a request
    (if it does anyway, the request is retried once on a fresh connection)."""
    model_api_pool_size: int = Field(256, ge=1)
    """Connections each gateway worker keeps to model_api; a request waits for a free one
    (up to the timeout), and past that gets 503 with Retry-After."""
    redis_url: RedisUrl = ""
    """model_api's cache (the same URL). When set, the gateway answers repeated images from
    it itself, read-only, without the hop to model_api; empty: every request is forwarded."""
    redis_timeout_seconds: float = Field(0.5, gt=0)
    """A cache read slower than this counts as failed (the request goes to model_api)."""
    redis_retry_seconds: float = Field(1.0, gt=0)
    """After a failed cache read, forward without asking Redis for this long."""
    cache_bypass_after_misses: int = Field(256, ge=0)
    """After this many cache lookups in a row found nothing (only new images coming), the
    gateway looks up one request in 16 (model_api still looks up every one), until a repeat
    shows up; 0: look up every request."""
    coalesce_max_images: int = Field(16, ge=1, le=64)
    """Unique small images that reach a gateway worker at about the same time (within
    `coalesce_turns` turns of its event loop) go to model_api in one call, up to this many
    (each still gets its own answer); 1: one call per image. Small V2 inference requests
    share calls of their own on the same terms."""
    coalesce_turns: int = Field(4, ge=1, le=64)
    """How many turns of its event loop a gateway worker waits for other images before it
    sends one (an idle loop turns in microseconds, so a lone image goes at once; a busy one
    as slowly as its work, so the calls grow with the load). bench/README.md has the A/B."""
    coalesce_max_calls: int = Field(0, ge=0)
    """At most this many calls per model under way from a gateway worker; images that come
    meanwhile wait for one to finish and go together (0: no limit)."""
    coalesce_max_image_bytes: int = Field(64 * 1024, gt=0)
    """Larger files (and V2 request bodies) always go to model_api in a call of their own."""
    coalesce_max_pixels: int = Field(256 * 256, gt=0)
    """So do images whose header declares more pixels than this, and images that are not
    PNG or JPEG: their work is long, and a client that leaves should cancel it, which a
    shared call cannot do. A V2 request shares a call only if its one input is such an
    image, or a tensor of at most this many elements."""
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MLSERVE_API_KEY", "API_KEY")
    )
    """When set, every route but health needs this key (Bearer or X-API-Key)."""
    cors_origins: list[str] = []
    """Origins allowed by CORS; none by default (closed)."""
    workers: int = Field(
        default_factory=lambda: cores.available_cores(),
        ge=1,
        validation_alias=AliasChoices("MLSERVE_WEB_API_WORKERS", "MLSERVE_WORKERS"),
    )
    """Gateway worker processes (cli only: the Streamlit UI is one process); defaults to
    the cores available. `MLSERVE_WEB_API_WORKERS` beats `MLSERVE_WORKERS`."""

    @model_validator(mode="after")
    def _plain_http_to_model_api(self) -> Settings:
        """The gateway's own client to model_api speaks plain HTTP (model_api serves nothing
        else): an https URL is refused, not sent in plain text. The UI's client (httpx) may."""
        if self.app_type == "cli" and not self.model_api_url.startswith("http://"):
            raise ValueError(
                f"MLSERVE_MODEL_API_URL must be http://host[:port] for the gateway (model_api "
                f"serves plain HTTP inside the stack's network), not {self.model_api_url!r}"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
