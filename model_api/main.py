"""model_api: the FastAPI app that serves one ONNX model with a Redis cache in front."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mlserve_common.runtime import tracing
from mlserve_common.runtime.body import UploadBudget
from mlserve_common.runtime.errors import install_error_handlers
from mlserve_common.runtime.hot_path import HotPath, declare
from mlserve_common.runtime.observability import NO_TELEMETRY, RequestIdMiddleware
from mlserve_common.runtime.server import init_worker
from model_api import v2_routes
from model_api.cache import PredictionCache
from model_api.config import Settings, get_settings
from model_api.dataplane import DataPlane
from model_api.repository import ModelRepository
from model_api.routes import HOT_ROUTES, router


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; the model and the cache are opened in its lifespan, not here."""
    settings = settings or get_settings()
    init_worker(settings, "model_api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cache = PredictionCache(
            settings.redis_url,
            settings.cache_ttl_seconds,
            settings.redis_timeout_seconds,
            settings.redis_retry_seconds,
        )
        await cache.start()
        repository = ModelRepository(settings, cache)
        await repository.start()
        app.state.dataplane.attach(repository)
        try:
            yield
        finally:
            app.state.dataplane.attach(None)
            await repository.close()
            await cache.close()
            tracing.shutdown()  # the spans still queued go out

    app = FastAPI(
        title="MLServe model_api",
        version="0.1.0",
        summary="Serves one ONNX model; answers repeated images from a Redis cache.",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.dataplane = DataPlane(settings.model_name, settings.max_body_bytes)
    app.state.upload_budget = UploadBudget(settings.max_inflight_body_bytes)
    install_error_handlers(app)
    hot_routes = HOT_ROUTES + v2_routes.HOT_ROUTES
    app.add_middleware(HotPath, routes=hot_routes)
    app.add_middleware(RequestIdMiddleware, access_log=settings.access_log)
    app.include_router(router)
    app.include_router(v2_routes.router)
    declare(app, hot_routes)  # in FastAPI's table too: public ones in the schema, batch hidden
    return app
