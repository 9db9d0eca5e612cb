"""model_api's REST routes, HTTP only: parse the request, call the dataplane, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from mlserve_common.runtime.body import read_limited_body
from mlserve_common.runtime.disconnect import unless_disconnected
from mlserve_common.runtime.hot_path import HotRoute
from mlserve_common.runtime.image_upload import read_image_bytes
from mlserve_common.runtime.openapi import IMAGE_BODY
from mlserve_common.wire import image_batch
from model_api import metrics
from model_api.dataplane import DataPlane
from model_api.errors import InvalidParameterError
from model_api.schemas import (
    AppType,
    Liveness,
    ModelList,
    ModelMetadata,
    PredictResponse,
    Readiness,
)

router = APIRouter()
T = TypeVar("T")
APP_TYPES = tuple(t.value for t in AppType)


def dataplane(request: Request) -> DataPlane:
    return request.app.state.dataplane


@router.get("/health/live", response_model=Liveness, tags=["health"])
async def live() -> Liveness:
    """Answers while the process runs."""
    return DataPlane.live()


@router.get(
    "/health/ready",
    response_model=Readiness,
    tags=["health"],
    responses={503: {"model": Readiness}},
)
async def ready(request: Request) -> JSONResponse:
    """200 once the model is loaded (503 before); says whether the cache is ok or degraded."""
    readiness = dataplane(request).readiness()
    status = 200 if readiness.status == "ready" else 503
    return JSONResponse(readiness.model_dump(), status_code=status)


@router.get("/v1/models", response_model=ModelList, tags=["models"])
async def list_models(request: Request) -> ModelList:
    """The models this service serves (the latest version of each)."""
    return dataplane(request).models()


@router.get("/v1/models/{model_name}", response_model=ModelMetadata, tags=["models"])
async def model_metadata(request: Request, model_name: str) -> ModelMetadata:
    """Name, version, digest, tensors, labels, execution provider."""
    return dataplane(request).metadata(model_name)


async def with_body(request: Request, call: Callable[[bytes], Awaitable[T]]) -> T:
    """`call(body)` on the request's body, read within the size limit and the upload budget;
    given up (and its work dropped) if the client leaves."""
    plane = dataplane(request)
    with request.app.state.upload_budget.reservation() as held:
        body = await read_limited_body(request, plane.max_body_bytes, held)
        work = call(body)
        del body  # the work holds it only as long as it needs it
        return await unless_disconnected(request, work)


def _app_type(request: Request) -> str:
    given = request.query_params.get("app_type", AppType.cli.value)
    if given not in APP_TYPES:
        raise InvalidParameterError(
            f"app_type must be one of {', '.join(APP_TYPES)}, not {given!r}"
        )
    return given


async def predict_image(request: Request, model_name: str) -> Response:
    """Classify one image; repeated images are answered from the cache."""
    plane = dataplane(request)
    plane.refuse_unless_served(model_name)
    given = _app_type(request)
    with request.app.state.upload_budget.reservation() as held:
        image = await read_image_bytes(request, plane.max_body_bytes, held)
        # The answer is JSON bytes already (see answers.py): no response_model re-validation.
        answer = await unless_disconnected(request, plane.predict(model_name, image, given))
    return Response(answer, media_type="application/json")


async def predict_images(request: Request, model_name: str) -> Response:
    """Several images in one call, each answered on its own (`mlserve_common.wire.image_batch`):
    the gateway's way to share one HTTP exchange among the images of a busy moment."""
    plane = dataplane(request)
    plane.refuse_unless_served(model_name)
    given = _app_type(request)
    answers = await with_body(request, lambda body: plane.predict_items(model_name, body, given))
    return Response(answers, media_type=image_batch.ANSWERS_TYPE)


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
    answer = await dataplane(request).stored(model_name, sha256, app_type.value)
    return Response(answer, media_type="application/json")


@router.get("/metrics", tags=["health"], response_class=Response)
async def metrics_text() -> Response:
    """Prometheus metrics, totals over every worker process."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
