"""HTTP only: parse the request, call the service, map the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from mlserve_common.runtime.body import read_limited_body, too_large
from mlserve_common.runtime.disconnect import unless_disconnected
from mlserve_common.runtime.errors import (
    InvalidRequestError,
    MLServeError,
    error_body_for,
    log_error,
    log_unexpected,
)
from mlserve_common.runtime.hot_path import HotRoute
from mlserve_common.runtime.image_upload import read_image_bytes
from mlserve_common.runtime.observability import new_request_id, request_id_var
from mlserve_common.runtime.openapi import IMAGE_BODY
from mlserve_common.wire import image_batch
from mlserve_common.wire.cache_keys import parse_image_sha256
from mlserve_common.wire.image_batch import ItemAnswer
from model_api import metrics
from model_api.errors import (
    CacheUnavailableError,
    InvalidParameterError,
    ModelNotReadyError,
    NotCachedError,
)
from model_api.repository import ModelRepository
from model_api.schemas import (
    AppType,
    Liveness,
    ModelList,
    ModelMetadata,
    PredictResponse,
    Readiness,
)
from model_api.service import ModelService

router = APIRouter()
APP_TYPES = tuple(t.value for t in AppType)


def repository(request: Request) -> ModelRepository:
    """The model repository, once the start-up models are loaded; 503 before."""
    found: ModelRepository | None = request.app.state.repository
    if found is None:
        raise ModelNotReadyError("the model is not loaded yet; retry shortly")
    return found


def loaded_service(request: Request) -> ModelService:
    """The model `/predict` serves (MODEL_NAME); 503 before it is loaded."""
    return repository(request).default()


def serving(request: Request, model_name: str, version: str | None = None) -> ModelService:
    """A served model (its latest version by default); 404 if it is not served."""
    return repository(request).get(model_name, version)


# Dependencies are `async`: a sync one would hop through the thread pool on every request.
async def served_model(request: Request, model_name: str) -> ModelService:
    return serving(request, model_name)


ServedModelDep = Annotated[ModelService, Depends(served_model)]


@router.get("/health/live", response_model=Liveness, tags=["health"])
async def live() -> Liveness:
    """Answers while the process runs."""
    return Liveness()


@router.get(
    "/health/ready",
    response_model=Readiness,
    tags=["health"],
    responses={503: {"model": Readiness}},
)
async def ready(request: Request) -> JSONResponse:
    """200 once the model is loaded (503 before); says whether the cache is ok or degraded."""
    found: ModelRepository | None = request.app.state.repository
    if found is None:
        loading = Readiness.loading(request.app.state.model_name)
        return JSONResponse(loading.model_dump(), status_code=503)
    return JSONResponse(found.readiness().model_dump())


@router.get("/v1/models", response_model=ModelList, tags=["models"])
async def list_models(request: Request) -> ModelList:
    """The models this service serves (the latest version of each)."""
    return ModelList(models=[service.metadata() for service in repository(request).services()])


@router.get("/v1/models/{model_name}", response_model=ModelMetadata, tags=["models"])
async def model_metadata(service: ServedModelDep) -> ModelMetadata:
    """Name, version (SHA-256 of the .onnx), tensors, labels, execution provider."""
    return service.metadata()


def _app_type(request: Request) -> str:
    given = request.query_params.get("app_type", AppType.cli.value)
    if given not in APP_TYPES:
        raise InvalidParameterError(
            f"app_type must be one of {', '.join(APP_TYPES)}, not {given!r}"
        )
    return given


async def predict_image(request: Request, model_name: str) -> Response:
    """Classify one image; repeated images are answered from the cache."""
    service = serving(request, model_name)
    given = _app_type(request)
    with request.app.state.upload_budget.reservation() as held:
        image = await read_image_bytes(request, service.settings.max_body_bytes, held)
        # The answer is JSON bytes already (see answers.py): no response_model re-validation.
        answer = await unless_disconnected(request, service.predictor.predict(image, given))
    return Response(answer, media_type="application/json")


async def predict_images(request: Request, model_name: str) -> Response:
    """Several images in one call, each answered on its own (`mlserve_common.wire.image_batch`):
    the gateway's way to share one HTTP exchange among the images of a busy moment."""
    service = serving(request, model_name)
    given = _app_type(request)

    async def predicted(item: image_batch.Item) -> ItemAnswer:
        return ItemAnswer(200, await service.predictor.predict(item.body, given))

    return await answer_items(request, service, predicted)


async def answer_items(
    request: Request,
    service: ModelService,
    answer: Callable[[image_batch.Item], Awaitable[ItemAnswer]],
) -> Response:
    """The items of an `image_batch` body, each `answer`ed at the same time as the others,
    under its own request id; an error is that item's own answer, as it would be alone."""
    limit = service.settings.max_body_bytes
    path = request.url.path
    with request.app.state.upload_budget.reservation() as held:
        body = await read_limited_body(request, limit, held)
        try:
            items = image_batch.decode_images(body)
        except image_batch.BatchFormatError as exc:
            raise InvalidRequestError(str(exc)) from None
        del body
        answers = await unless_disconnected(
            request, asyncio.gather(*(_answer(item, limit, path, answer) for item in items))
        )
    return Response(image_batch.encode_answers(answers), media_type=image_batch.ANSWERS_TYPE)


async def _answer(
    item: image_batch.Item,
    limit: int,
    path: str,
    answer: Callable[[image_batch.Item], Awaitable[ItemAnswer]],
) -> ItemAnswer:
    request_id = item.request_id or new_request_id()
    token = request_id_var.set(request_id)
    try:
        if len(item.body) > limit:
            raise too_large(limit)
        return await answer(item)
    except MLServeError as exc:
        log_error("POST", path, exc)
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        body = orjson.dumps(error_body_for(request_id, exc.code, exc.message))
        return ItemAnswer(exc.status_code, body, retry_after)
    except Exception as exc:
        log_unexpected(exc, f"a batched request, {request_id}")
        body = orjson.dumps(error_body_for(request_id, "internal_error", "Internal server error"))
        return ItemAnswer(500, body)
    finally:
        request_id_var.reset(token)


APP_TYPE_QUERY = {
    "name": "app_type",
    "in": "query",
    "required": False,
    "description": "The front end asking.",
    "schema": {"type": "string", "enum": [t.value for t in AppType], "default": AppType.cli.value},
}
PREDICT = {
    "tags": ["models"],
    "openapi_extra": {**IMAGE_BODY, "parameters": [APP_TYPE_QUERY]},
    "responses": {200: {"model": PredictResponse, "description": "The prediction."}},
}

HOT_ROUTES = [
    # Declared once: HotPath answers them; `declare` puts them in FastAPI's table and schema.
    HotRoute("/v1/models/{model_name}/predict", predict_image, openapi=PREDICT),
    HotRoute("/v1/models/{model_name}/predict/batch", predict_images, internal=True),
]


# One decorator per method: a multi-method route would give OpenAPI one operation id twice.
@router.head(
    "/v1/models/{model_name}/predictions/{sha256}",
    tags=["models"],
    operation_id="stored_prediction_head",
)
@router.get(
    "/v1/models/{model_name}/predictions/{sha256}",
    tags=["models"],
    operation_id="stored_prediction",
    responses={
        200: {"model": PredictResponse, "description": "The stored answer."},
        404: {"description": "`not_cached`: upload the image to get an answer."},
    },
)
async def stored_prediction(
    request: Request,
    model_name: str,
    sha256: str,
    app_type: Annotated[AppType, Query(description="The front end asking.")] = AppType.cli,
) -> Response:
    """The answer an upload of the image with this SHA-256 would get from the cache now,
    without the image and without inferring; 404 `not_cached` when there is none."""
    service = serving(request, model_name)
    try:
        sha256 = parse_image_sha256(sha256)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    answer = await service.predictor.stored(app_type.value, sha256)
    if answer is not None:
        return Response(answer, media_type="application/json")
    if not service.cache.up:
        raise CacheUnavailableError("the cache cannot be read now; upload the image instead")
    raise NotCachedError(
        f"no answer of model {model_name!r} (digest {service.predictor.digest[:12]}) is stored "
        "for that image; upload it to get one"
    )


@router.get("/metrics", tags=["health"], response_class=Response)
async def metrics_text() -> Response:
    """Prometheus metrics, totals over every worker process."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
