"""The Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor data
and model repository extensions: HTTP only, the meaning is the dataplane's.

Two ways to send an image:
- `image`, BYTES, shape [N]: N encoded image files (PNG, JPEG, ...), decoded and
  preprocessed as `/predict` does;
- the model's own input (mnist: `input`, FP32, shape [N, 1, 28, 28]): an already
  preprocessed tensor, straight to the session after its shape and datatype are checked.
The output is the model's (`probabilities`, FP32 [N, labels]). Answers are cached and
shared by identical concurrent requests like `/predict`'s, under a key over the model, its
version, the inputs and the outputs asked for.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mlserve_common.runtime.hot_path import HotRoute
from mlserve_common.wire import image_batch, v2_wire
from model_api.errors import InvalidRequestError
from model_api.routes import dataplane, with_body

TAG = "v2 (Open Inference Protocol)"
router = APIRouter(prefix="/v2", tags=[TAG])

SERVER = {
    "name": "mlserve",
    "version": "0.1.0",
    "extensions": ["binary_tensor_data", "model_repository"],
}


@router.get("")
@router.get("/", include_in_schema=False)  # the path the protocol's own schema names
async def server_metadata() -> dict:
    """Server name, version and protocol extensions."""
    return SERVER


@router.get("/health/live")
async def server_live() -> dict:
    return {"live": True}


@router.get("/health/ready")
async def server_ready(request: Request) -> JSONResponse:
    """200 when every model this service should serve is loaded."""
    ready = dataplane(request).ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/models/{model_name}")
async def get_model(request: Request, model_name: str) -> dict:
    """A model's name, versions, inputs and outputs."""
    return dataplane(request).v2_metadata(model_name)


@router.get("/models/{model_name}/versions/{version}")
async def get_model_version(request: Request, model_name: str, version: str) -> dict:
    return dataplane(request).v2_metadata(model_name, version)


@router.get("/models/{model_name}/ready")
async def model_ready(request: Request, model_name: str) -> dict:
    return dataplane(request).model_ready(model_name)


@router.get("/models/{model_name}/versions/{version}/ready")
async def model_version_ready(request: Request, model_name: str, version: str) -> dict:
    return dataplane(request).model_ready(model_name, version)


async def infer(request: Request, model_name: str) -> Response:
    """Run the model: JSON or binary tensors in, the model's output back."""
    return await _infer(request, model_name, None)


async def infer_version(request: Request, model_name: str, version: str) -> Response:
    """Run this version of the model: JSON or binary tensors in, its output back."""
    return await _infer(request, model_name, version)


async def _infer(request: Request, model_name: str, version: str | None) -> Response:
    plane = dataplane(request)
    plane.refuse_unless_served(model_name, version)
    header_length = request.headers.get(v2_wire.HEADER_LENGTH)
    answer = await with_body(
        request, lambda body: plane.infer_v2(model_name, version, body, header_length)
    )
    return Response(answer.body, headers=v2_wire.body_headers(answer.header_length))


async def infer_batch(request: Request, model_name: str, version: str | None = None) -> Response:
    """Several V2 inference requests in one call (`mlserve_common.wire.image_batch`), each
    answered as `infer` would answer it alone: the gateway's way to share one HTTP exchange
    among the small V2 requests of a busy moment. Not part of the protocol, and not passed
    through by the gateway (its path is not under /v2)."""
    plane = dataplane(request)
    plane.refuse_unless_served(model_name, version)
    answers = await with_body(request, lambda body: plane.infer_v2_items(model_name, version, body))
    return Response(answers, media_type=image_batch.ANSWERS_TYPE)


INFER = {"tags": [TAG]}

HOT_ROUTES = [
    # Declared once: HotPath answers them; `declare` puts them in FastAPI's table and schema.
    HotRoute("/v2/models/{model_name}/infer", infer, openapi=INFER),
    HotRoute("/v2/models/{model_name}/versions/{version}/infer", infer_version, openapi=INFER),
    HotRoute("/v1/models/{model_name}/infer/batch", infer_batch, internal=True),
    HotRoute("/v1/models/{model_name}/versions/{version}/infer/batch", infer_batch, internal=True),
]


# The repository extension
@router.post("/repository/index")
async def repository_index(request: Request) -> list[dict]:
    """Every model in the repository, with its state (READY, LOADING, UNAVAILABLE)."""
    body = await request.body()
    only_ready = False
    if body:
        try:
            only_ready = bool(_json_object(body).get("ready", False))
        except ValueError as exc:
            raise InvalidRequestError(f"the index request must be a JSON object: {exc}") from None
    return dataplane(request).index(only_ready)


@router.post("/repository/models/{model_name}/load")
async def load_model(request: Request, model_name: str) -> dict:
    """Load (or reload) a model, in every worker; the others keep serving meanwhile."""
    await dataplane(request).load(model_name)
    return {}


@router.post("/repository/models/{model_name}/unload")
async def unload_model(request: Request, model_name: str) -> dict:
    """Unload a model, in every worker; its in-flight requests finish first."""
    await dataplane(request).unload(model_name)
    return {}


def _json_object(body: bytes) -> dict:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value
