"""The one pooled HTTP client from the gateway to model_api (aiohttp: see bench/gateway_client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from web_api.cli.errors import ModelApiTimeoutError, ModelApiUnavailableError


@dataclass(frozen=True)
class UpstreamResponse:
    """model_api's answer, passed on untouched (no JSON parsing on the hot path)."""

    status: int
    body: bytes
    content_type: str


class ModelApiClient:
    """Forwards requests to model_api over one keep-alive connection pool."""

    def __init__(self, base_url: str, timeout: float, connect_timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(
                total=timeout, sock_connect=connect_timeout, connect=connect_timeout
            ),
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )

    async def close(self) -> None:
        await self.session.close()

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
            async with self.session.request(
                method, self.base_url + path, data=body, headers=headers, params=params
            ) as response:
                return UpstreamResponse(
                    response.status,
                    await response.read(),
                    response.headers.get("content-type", "application/json"),
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise ModelApiUnavailableError(
                "model_api is unavailable right now (connection timed out); try again shortly"
            ) from exc
        except TimeoutError as exc:
            raise ModelApiTimeoutError(
                "model_api did not answer in time; try again, or raise "
                "MLSERVE_MODEL_API_TIMEOUT_SECONDS"
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            raise ModelApiUnavailableError(
                "model_api is unavailable right now; try again in a moment"
            ) from exc
