"""The Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor data
and model repository extensions.

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
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mlserve_common.runtime.body import read_limited_body
from mlserve_common.runtime.disconnect import unless_disconnected
from mlserve_common.runtime.hot_path import HotRoute
from mlserve_common.wire import v2_wire
from mlserve_common.wire.cache_keys import v2_cache_key
from mlserve_common.wire.image_batch import Item, ItemAnswer
from model_api.errors import InvalidRequestError, ModelNotReadyError
from model_api.model_config import TensorSpec
from model_api.routes import answer_items, repository, serving
from model_api.service import ModelService
from model_api.v2_codec import Output, V2RequestError, encode_response, parse_request

TAG = "v2 (Open Inference Protocol)"
router = APIRouter(prefix="/v2", tags=[TAG])

SERVER = {
    "name": "mlserve",
    "version": "0.1.0",
    "extensions": ["binary_tensor_data", "model_repository"],
}
IMAGE_INPUT = "image"
"""The BYTES input that carries encoded image files."""
MAX_BATCH = 256
"""Most images or tensor rows in one V2 request."""


@router.get("")
async def server_metadata() -> dict:
    """Server name, version and protocol extensions."""
    return SERVER


@router.get("/health/live")
async def server_live() -> dict:
    return {"live": True}


@router.get("/health/ready")
async def server_ready(request: Request) -> JSONResponse:
    """200 when every model this service should serve is loaded."""
    found = request.app.state.repository
    ready = found is not None and found.ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def model_metadata(service: ModelService, versions: list[str]) -> dict:
    config = service.runner.config
    return {
        "name": config.name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [
            _tensor(config.input),
            {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [_tensor(config.output)],
        "parameters": {
            "labels": config.labels,
            "description": config.description,
            "digest": service.runner.digest,
        },
    }


def _tensor(spec: TensorSpec) -> dict:
    return {"name": spec.name, "datatype": spec.datatype, "shape": spec.protocol_shape}


@router.get("/models/{model_name}")
async def get_model(request: Request, model_name: str) -> dict:
    """A model's name, versions, inputs and outputs."""
    service = serving(request, model_name)
    return model_metadata(service, repository(request).versions(model_name))


@router.get("/models/{model_name}/versions/{version}")
async def get_model_version(request: Request, model_name: str, version: str) -> dict:
    service = serving(request, model_name, version)
    return model_metadata(service, [version])


@router.get("/models/{model_name}/ready")
async def model_ready(request: Request, model_name: str) -> dict:
    serving(request, model_name)
    return {"name": model_name, "ready": True}


@router.get("/models/{model_name}/versions/{version}/ready")
async def model_version_ready(request: Request, model_name: str, version: str) -> dict:
    serving(request, model_name, version)
    return {"name": model_name, "version": version, "ready": True}


@dataclass(frozen=True)
class V2Answer:
    body: bytes
    header_length: int | None
    """Inference-Header-Content-Length: binary outputs follow the JSON; None: JSON only."""

    def response(self) -> Response:
        return Response(self.body, headers=v2_wire.body_headers(self.header_length))


async def infer(request: Request, model_name: str) -> Response:
    """Run the model: JSON or binary tensors in, the model's output back."""
    return await _infer(request, model_name, None)


async def infer_version(request: Request, model_name: str, version: str) -> Response:
    """Run this version of the model: JSON or binary tensors in, its output back."""
    return await _infer(request, model_name, version)


async def _infer(request: Request, model_name: str, version: str | None) -> Response:
    service = serving(request, model_name, version)
    with request.app.state.upload_budget.reservation() as held:
        body = await read_limited_body(request, service.settings.max_body_bytes, held)
        work = answer_v2(service, model_name, body, request.headers.get(v2_wire.HEADER_LENGTH))
        del body
        answer = await unless_disconnected(request, work)
    return answer.response()


async def answer_v2(
    service: ModelService, model_name: str, body: bytes, header_length: str | None
) -> V2Answer:
    """One V2 inference request's answer; `InvalidRequestError` for a request that breaks
    the protocol or does not fit the model."""
    config = service.runner.config
    try:
        parsed = parse_request(body, header_length)
    except V2RequestError as exc:
        raise InvalidRequestError(str(exc)) from None
    del body
    if len(parsed.inputs) != 1:
        raise InvalidRequestError(
            f"model {model_name!r} takes one input, {_inputs_text(service)}; "
            f"the request has {len(parsed.inputs)}"
        )
    (tensor,) = parsed.inputs
    wanted = parsed.outputs or []
    for output in wanted:
        if output.name != config.output.name:
            raise InvalidRequestError(
                f"model {model_name!r} has no output {output.name!r}; "
                f"its output is {config.output.name!r}"
            )
    key = v2_cache_key(
        model_name,
        service.runner.digest,
        [(tensor.name, tensor.datatype, tensor.shape, tensor.raw)],
        [o.name for o in wanted],
    )
    if tensor.name == IMAGE_INPUT:
        images = _images(tensor, model_name)
        rows, _ = await service.predictor.infer_v2(key, images=images)
    elif tensor.name == config.input.name:
        rows, _ = await service.predictor.infer_v2(key, tensor=_model_input(tensor, service))
    else:
        raise InvalidRequestError(
            f"model {model_name!r} has no input {tensor.name!r}; {_inputs_text(service)}"
        )
    binary = wanted[0].binary if wanted else parsed.binary_output
    answer, length = encode_response(
        model_name,
        service.version,
        parsed.id,
        [Output(config.output.name, rows, binary)],
        {"digest": service.runner.digest},
    )
    return V2Answer(answer, length)


def _inputs_text(service: ModelService) -> str:
    config = service.runner.config
    spec = config.input
    return (
        f"either {spec.name!r} ({spec.datatype}, shape {spec.protocol_shape}, a preprocessed "
        "tensor) or "
        f"{IMAGE_INPUT!r} (BYTES, shape [N], encoded image files)"
    )


def _images(tensor, model_name: str) -> list[bytes]:
    if tensor.datatype != "BYTES":
        raise InvalidRequestError(
            f"input {IMAGE_INPUT!r} of model {model_name!r} is BYTES (encoded image files), "
            f"not {tensor.datatype}"
        )
    if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
        raise InvalidRequestError(
            f"input {IMAGE_INPUT!r} has shape [N] (or [N, 1]), not {list(tensor.shape)}"
        )
    if not 1 <= len(tensor.data) <= MAX_BATCH:
        raise InvalidRequestError(f"send 1 to {MAX_BATCH} images, not {len(tensor.data)}")
    return tensor.data


def _model_input(tensor, service: ModelService) -> np.ndarray:
    config = service.runner.config
    expected = config.input.protocol_shape
    if tensor.datatype != config.input.datatype:
        raise InvalidRequestError(
            f"input {config.input.name!r} is {config.input.datatype}, not {tensor.datatype}; "
            "to send an image "
            f"file use the BYTES input {IMAGE_INPUT!r}"
        )
    shape = list(tensor.shape)
    if len(shape) != len(expected) or shape[1:] != expected[1:] or not 1 <= shape[0] <= MAX_BATCH:
        raise InvalidRequestError(
            f"input {config.input.name!r} has shape {expected} (first axis 1 to {MAX_BATCH}), "
            f"not {shape}"
        )
    return np.ascontiguousarray(tensor.data, dtype=np.float32).reshape(shape)


async def infer_batch(request: Request, model_name: str, version: str | None = None) -> Response:
    """Several V2 inference requests in one call (`mlserve_common.wire.image_batch`), each
    answered as `infer` would answer it alone: the gateway's way to share one HTTP exchange
    among the small V2 requests of a busy moment. Not part of the protocol, and not passed
    through by the gateway (its path is not under /v2)."""
    service = serving(request, model_name, version)

    async def inferred(item: Item) -> ItemAnswer:
        length = None if item.header_length is None else str(item.header_length)
        answer = await answer_v2(service, model_name, item.body, length)
        return ItemAnswer(200, answer.body, header_length=answer.header_length)

    return await answer_items(request, service, inferred)


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
            only_ready = bool(parse_json_object(body).get("ready", False))
        except ValueError as exc:
            raise InvalidRequestError(f"the index request must be a JSON object: {exc}") from None
    entries = repository(request).index()
    return [e for e in entries if e["state"] == "READY"] if only_ready else entries


@router.post("/repository/models/{model_name}/load")
async def load_model(request: Request, model_name: str) -> dict:
    """Load (or reload) a model, in every worker; the others keep serving meanwhile."""
    found = repository(request)
    await found.load(model_name)
    if model_name not in found.served():
        raise ModelNotReadyError(f"model {model_name!r} did not load")
    return {}


@router.post("/repository/models/{model_name}/unload")
async def unload_model(request: Request, model_name: str) -> dict:
    """Unload a model, in every worker; its in-flight requests finish first."""
    await repository(request).unload(model_name)
    return {}


def parse_json_object(body: bytes) -> dict:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value
