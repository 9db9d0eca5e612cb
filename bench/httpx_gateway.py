"""The gateway app unchanged except its upstream client: httpx instead of aiohttp.

Run it as `python -m bench.httpx_gateway`, the way `python -m web_api` runs the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from mlserve_common.server import serve
from web_api.config import get_settings
from web_api.gateway.errors import ModelApiTimeoutError, ModelApiUnavailableError
from web_api.gateway.main import create_app as create_production_app
from web_api.gateway.model_client import UpstreamResponse

CONCURRENCY_HEADROOM = 64
"""Pool size: twice the benchmark's 32 clients, so no request waits for a connection."""


class HttpxModelApiClient:
    """ModelApiClient's contract on one pooled httpx.AsyncClient."""

    def __init__(self, base_url: str, timeout: float, connect_timeout: float) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=CONCURRENCY_HEADROOM,
                max_keepalive_connections=CONCURRENCY_HEADROOM,
                keepalive_expiry=30,
            ),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        """One call to model_api; 503 when it cannot be reached, 504 when it is too slow."""
        try:
            response = await self.client.request(
                method, path, content=body, headers=headers, params=params
            )
        except httpx.ConnectTimeout as exc:
            raise ModelApiUnavailableError("model_api is unavailable (connect timeout)") from exc
        except httpx.TimeoutException as exc:
            raise ModelApiTimeoutError("model_api did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ModelApiUnavailableError("model_api is unavailable right now") from exc
        return UpstreamResponse(
            response.status_code,
            response.content,
            response.headers.get("content-type", "application/json"),
        )


def create_app() -> FastAPI:
    """The production gateway whose lifespan swaps in HttpxModelApiClient."""
    settings = get_settings()
    app = create_production_app(settings)
    production_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with production_lifespan(app):
            aiohttp_client = app.state.model_client
            app.state.model_client = HttpxModelApiClient(
                settings.model_api_url,
                settings.model_api_timeout_seconds,
                settings.model_api_connect_timeout_seconds,
            )
            try:
                yield
            finally:
                await app.state.model_client.close()
                app.state.model_client = aiohttp_client  # closed by the production lifespan

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    """Serve it with the same uvicorn options as `python -m web_api`."""
    settings = get_settings()
    serve("bench.httpx_gateway:create_app", settings.host, settings.web_port, settings.log_level)


if __name__ == "__main__":
    main()
