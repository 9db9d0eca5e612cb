"""What each request to model_api means, on plain values: no FastAPI, no HTTP.

The REST routes (`routes.py`, `v2_routes.py`) parse a request, call one method here and
map its answer or its `MLServeError` to HTTP; another front-end would do the same. Each
inference walks the stages of `Predictor`: cache lookup -> decode -> preprocess ->
(batch) -> infer -> encode -> cache write.

- health: `live`, `readiness`, `ready`, `model_ready`
- metadata: `models`, `metadata`, `v2_metadata`
- inference: `predict` (one image), `predict_items` (the gateway's batch of images),
  `stored` (an answer asked by the image's SHA-256), `infer_v2` (one V2 request),
  `infer_v2_items` (the gateway's batch of V2 requests)
- repository: `index`, `load`, `unload`
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from mlserve_common.runtime import tracing
from mlserve_common.runtime.body import too_large
from mlserve_common.runtime.errors import (
    InvalidRequestError,
    MLServeError,
    error_body_for,
    log_error,
    log_unexpected,
)
from mlserve_common.runtime.logs import note_request, request_id_var
from mlserve_common.runtime.observability import new_request_id
from mlserve_common.wire import image_batch
from mlserve_common.wire.cache_keys import parse_image_sha256
from mlserve_common.wire.image_batch import Item, ItemAnswer
from model_api import v2_inputs
from model_api.errors import (
    CacheUnavailableError,
    ModelNotReadyError,
    NotCachedError,
)
from model_api.model_config import TensorSpec
from model_api.repository import ModelRepository
from model_api.schemas import Liveness, ModelList, ModelMetadata, Readiness
from model_api.service import ModelService
from model_api.v2_codec import Output, V2RequestError, encode_response, parse_request


@dataclass(frozen=True)
class V2Answer:
    body: bytes
    header_length: int | None
    """Inference-Header-Content-Length: binary outputs follow the JSON; None: JSON only."""


class DataPlane:
    """model_api's requests over its model repository, attached once the start-up models
    have loaded; until then every model request is 503 `model_not_ready`."""

    def __init__(self, model_name: str, max_body_bytes: int) -> None:
        self.model_name = model_name
        """The model `/predict` serves (MODEL_NAME)."""
        self.max_body_bytes = max_body_bytes
        self._repository: ModelRepository | None = None

    def attach(self, repository: ModelRepository | None) -> None:
        self._repository = repository

    @property
    def repository(self) -> ModelRepository:
        if self._repository is None:
            raise ModelNotReadyError("the model is not loaded yet; retry shortly")
        return self._repository

    def refuse_unless_served(self, name: str, version: str | None = None) -> None:
        """404 if the model (version) is not served, 503 while it loads: what routes ask
        before reading a body, so as not to read one for nothing."""
        self.repository.get(name, version)

    def serving(self, name: str, version: str | None = None) -> ModelService:
        """A served model version (its latest by default), noted for the request's log
        lines; 404 if it is not served, 503 while it loads."""
        service = self.repository.get(name, version)
        note_request(model=name, digest=service.runner.digest)
        return service

    # health
    @staticmethod
    def live() -> Liveness:
        return Liveness()

    def readiness(self) -> Readiness:
        """`ready` with the model and the cache's state, or `loading` (answered with 503)."""
        if self._repository is None:
            return Readiness.loading(self.model_name)
        return self._repository.readiness()

    def ready(self) -> bool:
        """Every model this service should serve is loaded."""
        return self._repository is not None and self._repository.ready()

    def model_ready(self, name: str, version: str | None = None) -> dict:
        self.serving(name, version)
        return {"name": name, **({"version": version} if version else {}), "ready": True}

    # metadata
    def models(self) -> ModelList:
        """The models served (the latest version of each)."""
        return ModelList(models=[service.metadata() for service in self.repository.services()])

    def metadata(self, name: str) -> ModelMetadata:
        return self.serving(name).metadata()

    def v2_metadata(self, name: str, version: str | None = None) -> dict:
        """A model's V2 metadata: every version it serves, or the one asked for."""
        service = self.serving(name, version)
        versions = self.repository.versions(name) if version is None else [version]
        config = service.runner.config
        return {
            "name": config.name,
            "versions": versions,
            "platform": "onnxruntime_onnx",
            "inputs": [
                _tensor(config.input),
                {"name": v2_inputs.IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
            ],
            "outputs": [_tensor(config.output)],
            "parameters": {
                "labels": config.labels,
                "description": config.description,
                "digest": service.runner.digest,
            },
        }

    # inference
    async def predict(self, name: str, image: bytes, app_type: str) -> bytes:
        """One image's answer, as the JSON bytes of a `PredictResponse`."""
        return await self.serving(name).predictor.predict(image, app_type)

    async def predict_items(self, name: str, body: bytes, app_type: str) -> bytes:
        """The answers to an `image_batch` body of images, each as `predict` would answer it."""
        predictor = self.serving(name).predictor

        async def predicted(item: Item) -> ItemAnswer:
            return ItemAnswer(200, await predictor.predict(item.body, app_type))

        return await self._answer_items(body, predicted, f"/v1/models/{name}/predict/batch")

    async def stored(self, name: str, sha256: str, app_type: str) -> bytes:
        """The answer an upload of the image with this SHA-256 would get from the cache now,
        without the image and without inferring; 404 `not_cached` when there is none."""
        service = self.serving(name)
        try:
            sha256 = parse_image_sha256(sha256)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        answer = await service.predictor.stored(app_type, sha256)
        if answer is not None:
            return answer
        if not service.cache.up:
            raise CacheUnavailableError("the cache cannot be read now; upload the image instead")
        raise NotCachedError(
            f"no answer of model {name!r} (digest {service.predictor.digest[:12]}) is stored "
            "for that image; upload it to get one"
        )

    async def infer_v2(
        self, name: str, version: str | None, body: bytes, header_length: str | None
    ) -> V2Answer:
        """One V2 inference request's answer; `InvalidRequestError` for a request that breaks
        the protocol or does not fit the model."""
        return await _infer_v2(self.serving(name, version), body, header_length)

    async def infer_v2_items(self, name: str, version: str | None, body: bytes) -> bytes:
        """The answers to an `image_batch` body of V2 requests, each as `infer_v2` would
        answer it alone."""
        service = self.serving(name, version)

        async def inferred(item: Item) -> ItemAnswer:
            length = None if item.header_length is None else str(item.header_length)
            answer = await _infer_v2(service, item.body, length)
            return ItemAnswer(200, answer.body, header_length=answer.header_length)

        at = f"/v1/models/{name}" + (f"/versions/{version}" if version else "")
        return await self._answer_items(body, inferred, f"{at}/infer/batch")

    async def _answer_items(
        self, body: bytes, answer: Callable[[Item], Awaitable[ItemAnswer]], where: str
    ) -> bytes:
        """The items of an `image_batch` body, each `answer`ed at the same time as the others,
        under its own request id; an error is that item's own answer, as it would be alone."""
        try:
            items = image_batch.decode_images(body)
        except image_batch.BatchFormatError as exc:
            raise InvalidRequestError(str(exc)) from None
        del body
        answers = await asyncio.gather(*(self._answer_item(item, answer, where) for item in items))
        return image_batch.encode_answers(answers)

    async def _answer_item(
        self, item: Item, answer: Callable[[Item], Awaitable[ItemAnswer]], where: str
    ) -> ItemAnswer:
        request_id = item.request_id or new_request_id()
        token = request_id_var.set(request_id)
        try:
            if len(item.body) > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            with tracing.item_span(f"POST {where}", item.traceparent):
                return await answer(item)
        except MLServeError as exc:
            log_error("POST", where, exc)
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            body = orjson.dumps(error_body_for(request_id, exc.code, exc.message))
            return ItemAnswer(exc.status_code, body, retry_after)
        except Exception as exc:
            log_unexpected(exc, f"a batched request, {request_id}")
            body = orjson.dumps(
                error_body_for(request_id, "internal_error", "Internal server error")
            )
            return ItemAnswer(500, body)
        finally:
            request_id_var.reset(token)

    # repository
    def index(self, only_ready: bool) -> list[dict]:
        """Every model in the repository with its state (READY, LOADING, UNAVAILABLE)."""
        entries = self.repository.index()
        return [e for e in entries if e["state"] == "READY"] if only_ready else entries

    async def load(self, name: str) -> None:
        """Load (or reload) a model, in every worker; the others keep serving meanwhile."""
        repository = self.repository
        await repository.load(name)
        if name not in repository.served():
            raise ModelNotReadyError(f"model {name!r} did not load")

    async def unload(self, name: str) -> None:
        """Unload a model, in every worker; its in-flight requests finish first."""
        await self.repository.unload(name)


def _tensor(spec: TensorSpec) -> dict:
    return {"name": spec.name, "datatype": spec.datatype, "shape": spec.protocol_shape}


async def _infer_v2(service: ModelService, body: bytes, header_length: str | None) -> V2Answer:
    """decode the V2 body -> check it against the model -> infer (or the cache) -> encode."""
    config = service.runner.config
    try:
        parsed = parse_request(body, header_length)
    except V2RequestError as exc:
        raise InvalidRequestError(str(exc)) from None
    del body
    work = v2_inputs.checked(parsed, config, service.runner.digest)
    rows, _ = await service.predictor.infer_v2(work.key, work.images, work.tensor)
    answer, length = encode_response(
        config.name,
        service.version,
        parsed.id,
        [Output(config.output.name, rows, work.binary)],
        {"digest": service.runner.digest},
    )
    return V2Answer(answer, length)
