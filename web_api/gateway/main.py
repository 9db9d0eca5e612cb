"""web_api, APP_TYPE=cli: a thin FastAPI gateway on the public port in front of model_api."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from mlserve_common.runtime import tracing
from mlserve_common.runtime.body import UploadBudget
from mlserve_common.runtime.errors import install_error_handlers
from mlserve_common.runtime.hot_path import HotPath, declare
from mlserve_common.runtime.observability import NO_TELEMETRY, RequestIdMiddleware
from mlserve_common.runtime.server import init_worker
from web_api.config import Settings, get_settings
from web_api.gateway import grpc_front
from web_api.gateway.coalescer import Coalescer
from web_api.gateway.hit_cache import HitCache
from web_api.gateway.model_client import ModelApiClient
from web_api.gateway.routes import HOT_ROUTES, protected, router

GRPC_GRACE_SECONDS = 5
"""On shutdown (after the HTTP side has drained), how long gRPC calls under way may finish."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; its pooled client to model_api and its cache reader live in the
    lifespan."""
    settings = settings or get_settings()
    init_worker(settings, "web_api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.model_client = ModelApiClient(
            settings.model_api_url,
            settings.model_api_timeout_seconds,
            settings.model_api_connect_timeout_seconds,
            settings.model_api_pool_size,
            idle_seconds=settings.model_api_idle_seconds,
        )
        app.state.hit_cache = HitCache(
            settings.redis_url,
            settings.redis_timeout_seconds,
            settings.redis_retry_seconds,
            settings.cache_bypass_after_misses,
        )
        app.state.coalescer = Coalescer(
            app.state.model_client,
            settings.coalesce_max_images,
            settings.coalesce_max_image_bytes,
            settings.coalesce_max_pixels,
            settings.coalesce_max_calls,
            settings.coalesce_turns,
        )
        grpc_server = None
        if settings.grpc_port:
            grpc_server = await grpc_front.start(
                settings,
                grpc_front.InferenceService(
                    settings, app.state.model_client, app.state.coalescer, app.state.upload_budget
                ),
            )
        try:
            yield
        finally:
            if grpc_server is not None:  # calls under way get a moment to finish
                await grpc_server.stop(GRPC_GRACE_SECONDS)
            await app.state.coalescer.close()
            await app.state.model_client.close()
            await app.state.hit_cache.close()
            tracing.shutdown()  # the spans still queued go out

    app = FastAPI(
        title="MLServe",
        version="0.1.0",
        summary=f"Post an image, get the {settings.model_name} model's prediction.",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.upload_budget = UploadBudget(settings.max_inflight_body_bytes)
    install_error_handlers(app)
    app.add_middleware(HotPath, routes=HOT_ROUTES)  # inside CORS and the request id
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"]
        )
    app.add_middleware(RequestIdMiddleware, access_log=settings.access_log)
    app.include_router(router)
    app.include_router(protected)
    declare(app, HOT_ROUTES)
    return app
