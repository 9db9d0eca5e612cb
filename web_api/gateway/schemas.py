"""The gateway's own response models (predictions are model_api's, passed through)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GatewayHealth(BaseModel):
    status: str = Field(description="healthy, degraded (cache down) or down (model_api not ready)")
    app_type: str
    model: str
    web_api: str
    model_api: str
    cache: str
    version: str | None = Field(None, description="The served model version (its folder).")
    digest: str | None = Field(None, description="The served model's digest (its identity).")
    provider: str | None = None
