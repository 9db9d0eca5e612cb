"""The gateway's HTTP routes: forward images to model_api, report health."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from mlserve_common.runtime import tracing
from mlserve_common.runtime.body import read_limited_body
from mlserve_common.runtime.disconnect import unless_disconnected
from mlserve_common.runtime.errors import InvalidRequestError, MLServeError
from mlserve_common.runtime.hot_path import HotRoute
from mlserve_common.runtime.image_upload import read_image_bytes
from mlserve_common.runtime.logs import note_request
from mlserve_common.runtime.openapi import IMAGE_BODY
from mlserve_common.stdlib_only.stack_health import DOWN, model_api_state
from mlserve_common.wire import v2_wire
from mlserve_common.wire.cache_keys import parse_image_sha256
from web_api.config import Settings
from web_api.gateway import metrics
from web_api.gateway.auth import require_api_key
from web_api.gateway.coalescer import Coalescer
from web_api.gateway.errors import UnknownModelError, UnknownRouteError
from web_api.gateway.hit_cache import HitCache
from web_api.gateway.model_client import ModelApiClient, UpstreamResponse, upstream_headers
from web_api.gateway.schemas import GatewayHealth

router = APIRouter()  # open: health
protected = APIRouter(dependencies=[Depends(require_api_key)])  # needs the key, if one is set
APP_TYPE = "cli"


# Dependencies are `async`: a sync one would hop through the thread pool on every request.
async def get_client(request: Request) -> ModelApiClient:
    return request.app.state.model_client


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


ClientDep = Annotated[ModelApiClient, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(app_settings)]


def _passthrough(upstream: UpstreamResponse) -> Response:
    headers = {}
    if upstream.header_length is not None:
        headers[v2_wire.HEADER_LENGTH] = upstream.header_length
    if upstream.retry_after is not None:
        headers["retry-after"] = upstream.retry_after
    return Response(
        upstream.body, upstream.status, media_type=upstream.content_type, headers=headers
    )


MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def model_path(model_name: str) -> str:
    """`/v1/models/<name>` for a name that can be a model folder; 404 for any other, so
    nothing from the client's path can reach model_api's path or query."""
    if not MODEL_NAME.fullmatch(model_name) or model_name in (".", ".."):
        raise UnknownModelError(f"model {model_name[:64]!r} is not served here")
    return f"/v1/models/{model_name}"


def sha256_path(sha256: str) -> str:
    """A SHA-256 as the path's last part; 400 for anything else, so nothing from the
    client's path can reach model_api's path or query."""
    try:
        return parse_image_sha256(sha256)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


async def _forward_image(request: Request, model_name: str) -> Response:
    """A repeated image is answered from the cache here (see hit_cache.py); anything else
    goes to model_api, the image's bytes alone (taken out of a multipart body), with the
    images that arrive with it (see coalescer.py). With neither the cache nor coalescing,
    the body goes as the client sent it."""
    settings: Settings = request.app.state.settings
    client: ModelApiClient = request.app.state.model_client
    hits: HitCache = request.app.state.hit_cache
    base = model_path(model_name)  # 404 before reading a body for nothing
    note_request(model=model_name)
    request_id = request.state.request_id
    coalescer: Coalescer = request.app.state.coalescer
    with request.app.state.upload_budget.reservation() as held:
        if hits.enabled or coalescer.coalescing:
            body = await read_image_bytes(request, settings.max_body_bytes, held)
            with tracing.span("cache lookup"):
                cached = await hits.answer(APP_TYPE, model_name, body)
                tracing.set_attributes(
                    **{"mlserve.cache": "forwarded" if cached is None else "hit"}
                )
            if cached is not None:
                return Response(cached, media_type="application/json")
            forward = functools.partial(coalescer.predict, base, APP_TYPE, body, request_id)
        else:
            body = await read_limited_body(request, settings.max_body_bytes, held)
            content_type = request.headers.get("content-type", "application/octet-stream")

            def forward() -> Awaitable[UpstreamResponse]:
                headers = {"content-type": content_type, **upstream_headers(request_id)}
                params = {"app_type": APP_TYPE}
                return client.request(
                    "POST", base + "/predict", body=body, headers=headers, params=params
                )

        # Made in the span, so that the call carries the span's trace context. A client that
        # leaves cancels the call, which closes its connection to model_api, where the work
        # behind it is dropped in turn.
        with tracing.span("forward", tracing.SpanKind.CLIENT):
            upstream = await unless_disconnected(request, forward())
    if upstream.status == 200 and hits.enabled:
        hits.learn(model_name, upstream.body)
    return _passthrough(upstream)


async def predict(request: Request) -> Response:
    """Classify one image with the model this stack serves (answers from the cache on repeats)."""
    return await _forward_image(request, request.app.state.settings.model_name)


async def predict_with_model(request: Request, model_name: str) -> Response:
    """Classify one image with the named model (404 if this stack does not serve it)."""
    return await _forward_image(request, model_name)


_RAW_PATH = re.compile(rb"/v2(/[\x21-\x7e]*)?")


async def forward_v2(request: Request, **_: str) -> Response:
    """Any `/v2` request (Open Inference Protocol), passed to model_api unchanged: method,
    path and query exactly as the client sent them, the body, and the headers the protocol
    uses. Its routes, below and in HOT_ROUTES, say which need the API key."""
    settings: Settings = request.app.state.settings
    client: ModelApiClient = request.app.state.model_client
    raw_path, query = request.scope["raw_path"], request.scope["query_string"]
    if not _RAW_PATH.fullmatch(raw_path) or any(c <= 0x20 or c > 0x7E for c in query):
        raise UnknownRouteError("no such V2 route")
    target = raw_path.decode("ascii") + ("?" + query.decode("ascii") if query else "")
    with request.app.state.upload_budget.reservation() as held:
        body = await read_limited_body(request, settings.max_body_bytes, held)
        coalescer: Coalescer = request.app.state.coalescer
        with tracing.span("forward", tracing.SpanKind.CLIENT):
            headers = upstream_headers(request.state.request_id)
            for name in ("content-type", v2_wire.HEADER_LENGTH):
                if name in request.headers:
                    headers[name] = request.headers[name]
            if request.method == "POST" and not query:
                # Small inference requests share calls, as images do (coalescer.py).
                forwarded = coalescer.infer_v2(target, body, headers, request.state.request_id)
            else:
                forwarded = client.request(request.method, target, body=body, headers=headers)
            return _passthrough(await unless_disconnected(request, forwarded))


PREDICT = {"tags": ["predict"], "openapi_extra": IMAGE_BODY}

HOT_ROUTES = [
    # Declared once: HotPath answers them, `declare` puts them in FastAPI's table and schema,
    # both behind the API key.
    HotRoute("/predict", predict, guard=require_api_key, openapi=PREDICT),
    HotRoute(
        "/v1/models/{model_name}/predict",
        predict_with_model,
        guard=require_api_key,
        openapi=PREDICT,
    ),
    # Declared in FastAPI's table by the protected /v2 catch-all below.
    HotRoute("/v2/models/{model_name}/infer", forward_v2, guard=require_api_key),
    HotRoute("/v2/models/{model_name}/versions/{version}/infer", forward_v2, guard=require_api_key),
]


@router.get("/", include_in_schema=False)
async def index() -> RedirectResponse:
    return RedirectResponse("/docs")


# One decorator per method and path: a multi-method route would give OpenAPI one operation
# id twice. Server metadata and health are open, as in KServe and Triton; the rest needs the
# key. FastAPI tries routes in order: the open ones come first.
@router.get("/v2", tags=["v2"], operation_id="v2_server_metadata")
@router.get("/v2/", include_in_schema=False)  # the path the protocol's own schema names
@router.get("/v2/health/live", tags=["v2"], operation_id="v2_server_live")
@router.get("/v2/health/ready", tags=["v2"], operation_id="v2_server_ready")
async def v2_open(request: Request) -> Response:
    """The Open Inference Protocol's server metadata and health, passed through."""
    return await forward_v2(request)


@protected.get("/v2/{route:path}", tags=["v2"], operation_id="v2_get")
@protected.post("/v2/{route:path}", tags=["v2"], operation_id="v2_post")
async def v2(request: Request) -> Response:
    """The Open Inference Protocol (KServe V2) of model_api, passed through: model metadata,
    inference (JSON or binary tensors), the model repository."""
    return await forward_v2(request)


@protected.get("/v1/models", tags=["models"])
async def list_models(request: Request, client: ClientDep) -> Response:
    """The model(s) served, with version, labels and execution provider."""
    headers = upstream_headers(request.state.request_id)
    return _passthrough(await client.request("GET", "/v1/models", headers=headers))


@protected.get("/v1/models/{model_name}", tags=["models"])
async def model_metadata(model_name: str, request: Request, client: ClientDep) -> Response:
    """One model's metadata."""
    headers = upstream_headers(request.state.request_id)
    return _passthrough(await client.request("GET", model_path(model_name), headers=headers))


# One decorator per method: a multi-method route would give OpenAPI one operation id twice.
@protected.head(
    "/v1/models/{model_name}/predictions/{sha256}",
    tags=["predict"],
    operation_id="stored_prediction_head",
)
@protected.get(
    "/v1/models/{model_name}/predictions/{sha256}",
    tags=["predict"],
    operation_id="stored_prediction",
)
async def stored_prediction(
    model_name: str, sha256: str, request: Request, client: ClientDep
) -> Response:
    """Ask by content: the answer an upload of the image whose SHA-256 this is would get
    from the cache now (200), or 404 `not_cached`, without sending the image; nothing is
    inferred."""
    headers = upstream_headers(request.state.request_id)
    target = f"{model_path(model_name)}/predictions/{sha256_path(sha256)}"
    # Always a GET upstream (the pool reads a body after every answer); for a HEAD the
    # server drops the body on the way out.
    forwarded = client.request("GET", target, headers=headers, params={"app_type": APP_TYPE})
    return _passthrough(await forwarded)


@protected.get("/metrics", tags=["health"], response_class=Response)
async def metrics_text() -> Response:
    """Prometheus metrics of the gateway (its cache reads), totals over its workers;
    model_api's own are on its `/metrics`, inside the network."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    """Answers while the gateway runs."""
    return {"status": "alive"}


@router.get("/health", response_model=GatewayHealth, tags=["health"])
async def health(client: ClientDep, settings: SettingsDep) -> JSONResponse:
    """healthy / degraded (cache down) / down (model_api not ready); 503 when down."""
    try:
        upstream = await client.request("GET", "/health/ready")
        ready = json.loads(upstream.body) if upstream.status in (200, 503) else {}
    except (MLServeError, ValueError):
        upstream, ready = None, {}
    status = model_api_state(upstream.status if upstream else 0, ready)
    model_api_ok = status != DOWN
    body = GatewayHealth(
        status=status,
        app_type=APP_TYPE,
        model=settings.model_name,
        web_api="ok",
        model_api="ready" if model_api_ok else "unavailable",
        cache=ready.get("cache", "unknown"),
        version=ready.get("version"),
        digest=ready.get("digest"),
        provider=ready.get("provider"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if model_api_ok else 503)
