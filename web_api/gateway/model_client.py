"""The one pooled HTTP client from the gateway to model_api (see upstream.py for why it is
our own)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from mlserve_common.runtime import tracing
from mlserve_common.runtime.observability import REQUEST_ID_HEADER
from mlserve_common.wire import v2_wire
from web_api.gateway.errors import (
    GatewaySaturatedError,
    ModelApiTimeoutError,
    ModelApiUnavailableError,
)
from web_api.gateway.upstream import (
    PoolExhausted,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamPool,
)

_HEADER_LENGTH = v2_wire.HEADER_LENGTH.encode()


def upstream_headers(request_id: str) -> dict[str, str]:
    """What a call to model_api carries of the request it serves (HTTP or gRPC): its id,
    and with tracing on the trace context of the span under way."""
    headers = {REQUEST_ID_HEADER: request_id}
    if tracing.enabled:
        headers[tracing.TRACEPARENT] = tracing.traceparent()
    return headers


@dataclass(frozen=True)
class UpstreamResponse:
    """model_api's answer, passed on untouched (no JSON parsing on the hot path)."""

    status: int
    body: bytes
    content_type: str
    header_length: str | None = None
    """Inference-Header-Content-Length (V2 binary answers), to pass on."""
    retry_after: str | None = None
    """Retry-After (model_api busy), to pass on."""


class ModelApiClient:
    """Forwards requests to model_api over one keep-alive connection pool."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        connect_timeout: float,
        pool_size: int = 256,
        pool_timeout: float | None = None,
        idle_seconds: float = 30.0,
    ) -> None:
        """`pool_timeout`: the longest wait for a free connection (default: `timeout`);
        `idle_seconds`: how long an unused connection is kept (less than model_api's
        keep-alive)."""
        self.timeout = timeout
        self.pool = UpstreamPool(
            base_url,
            limit=pool_size,
            connect_timeout=connect_timeout,
            pool_timeout=timeout if pool_timeout is None else pool_timeout,
            idle_seconds=idle_seconds,
        )

    async def close(self) -> None:
        await self.pool.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        """One call to model_api; 503 when it cannot be reached, 504 when it is too slow."""
        target = f"{path}?{urlencode(params)}" if params else path
        try:
            answer = await self.pool.request(method, target, headers or {}, body, self.timeout)
        except PoolExhausted as exc:
            raise GatewaySaturatedError(
                "the gateway is saturated: every connection to model_api stayed busy; "
                "retry in a moment"
            ) from exc
        except UpstreamConnectError as exc:
            reason = "connection timed out" if "timed out" in str(exc) else "connection refused"
            raise ModelApiUnavailableError(
                f"model_api is unavailable right now ({reason}); try again shortly"
            ) from exc
        except TimeoutError as exc:
            raise ModelApiTimeoutError(
                "model_api did not answer in time; try again, or raise "
                "MLSERVE_MODEL_API_TIMEOUT_SECONDS"
            ) from exc
        except (UpstreamDisconnected, OSError) as exc:
            raise ModelApiUnavailableError(
                "model_api is unavailable right now; try again in a moment"
            ) from exc
        content_type = answer.headers.get(b"content-type", b"application/json").decode("latin-1")
        header_length = answer.headers.get(_HEADER_LENGTH)
        retry_after = answer.headers.get(b"retry-after")
        return UpstreamResponse(
            answer.status,
            answer.body,
            content_type,
            header_length.decode("latin-1") if header_length is not None else None,
            retry_after.decode("latin-1") if retry_after is not None else None,
        )
