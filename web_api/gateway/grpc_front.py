"""The Open Inference Protocol over gRPC, in each gateway worker: tritonclient's own
`inference.GRPCInferenceService`, so unmodified `tritonclient.grpc` code works.

Each call becomes the V2 REST call model_api answers (grpc_codec.py), through the same
coalescing and connection pool as V2 REST; there is no second request path. As on REST:
server metadata and health are open, the rest needs the API key (`authorization: Bearer KEY`
or `x-api-key` metadata); errors are model_api's envelopes as gRPC status codes, with the
request id in the message and in the trailing metadata (`x-request-id`).

A client's deadline cancels the call when it passes, as a REST client that leaves does:
the call to model_api is dropped with its connection, and model_api drops the work not yet
started (`mlserve_abandoned`). Each worker listens on the port with SO_REUSEPORT (gRPC's
default on Linux); the kernel spreads connections over them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from mlserve_common.runtime import tracing
from mlserve_common.runtime.body import UploadBudget
from mlserve_common.runtime.errors import MLServeError, log_error, log_unexpected
from mlserve_common.runtime.logs import note_request, request_id_var
from mlserve_common.runtime.observability import (
    REQUEST_ID_HEADER,
    access_logger,
    is_safe_request_id,
    new_request_id,
)
from web_api.config import Settings
from web_api.gateway import grpc_codec, metrics
from web_api.gateway.auth import check_key, presented_key
from web_api.gateway.coalescer import Coalescer
from web_api.gateway.model_client import ModelApiClient, UpstreamResponse, upstream_headers

SERVICE = "/inference.GRPCInferenceService/"
KEEPALIVE = [
    # As Triton's defaults: clients may ping at most every 5 minutes without calls, and a
    # connection that does not answer the server's ping (every 2 hours) within 20 s is closed.
    ("grpc.keepalive_time_ms", 2 * 3600 * 1000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 300_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 0),
]

DEADLINE_SLACK_SECONDS = 0.25
"""A call cancelled this close to its deadline is counted as DEADLINE_EXCEEDED."""

Handler = Callable[..., Awaitable[Any]]


def rpc(*, open_: bool = False) -> Callable[[Handler], Handler]:
    """An RPC of the service: its request id (the client's `x-request-id` if safe), the API
    key unless `open_`, errors as status codes, its metrics and its log lines."""

    def wrap(handler: Handler) -> Handler:
        name = handler.__name__
        path = SERVICE + name

        async def answered(
            self: InferenceService, request: Any, context: Any, metadata: dict, request_id: str
        ) -> Any:
            trailer = ((REQUEST_ID_HEADER, request_id),)
            start, status = time.perf_counter(), grpc.StatusCode.OK
            try:
                if not open_:
                    check_key(
                        self.settings.api_key,
                        presented_key(
                            metadata.get("authorization", ""), metadata.get("x-api-key", "")
                        ),
                    )
                result = await handler(self, request, request_id)
                context.set_trailing_metadata(trailer)
                return result
            except MLServeError as exc:
                status = grpc_codec.status_code(exc.status_code, exc.code)
                log_error("grpc", path, exc)
                await context.abort(status, f"{exc.message} (request id {request_id})", trailer)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception as exc:  # a fault of ours: no traceback to the client
                status = grpc.StatusCode.INTERNAL
                log_unexpected(exc, path)
                await context.abort(status, f"internal error (request id {request_id})", trailer)
            except asyncio.CancelledError:
                # The client's clock runs ahead of ours by the call's trip here: a client whose
                # deadline passed cancels a moment before our copy of its deadline passes.
                remaining = context.time_remaining()
                passed = remaining is not None and remaining <= DEADLINE_SLACK_SECONDS
                status = grpc.StatusCode.DEADLINE_EXCEEDED if passed else grpc.StatusCode.CANCELLED
                raise
            finally:
                seconds = time.perf_counter() - start
                metrics.GRPC_REQUESTS.labels(name, status.name).inc()
                metrics.GRPC_SECONDS.labels(name).observe(seconds)
                if self.settings.access_log:
                    _log(path, status, seconds)

        @functools.wraps(handler)
        async def answer(self: InferenceService, request: Any, context: Any) -> Any:
            metadata = dict(context.invocation_metadata() or ())
            given = metadata.get(REQUEST_ID_HEADER, "")
            request_id = given if is_safe_request_id(given) else new_request_id()
            token = request_id_var.set(request_id)
            try:
                if not tracing.enabled:
                    return await answered(self, request, context, metadata, request_id)
                # the call's log lines, error or access, are written inside its span
                with tracing.server_span(f"grpc {name}", metadata, **{"rpc.method": name}):
                    return await answered(self, request, context, metadata, request_id)
            finally:
                request_id_var.reset(token)

        return answer

    return wrap


def _log(path: str, status: grpc.StatusCode, seconds: float) -> None:
    duration_ms = round(seconds * 1000, 3)
    extra = {"method": "grpc", "path": path, "status": status.value[0], "duration_ms": duration_ms}
    access_logger.info("grpc %s %s %.1f ms", path, status.name, duration_ms, extra=extra)


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The RPCs tritonclient uses, each one call to model_api; the rest are UNIMPLEMENTED."""

    def __init__(
        self,
        settings: Settings,
        client: ModelApiClient,
        coalescer: Coalescer,
        budget: UploadBudget,
    ) -> None:
        self.settings, self.client, self.coalescer, self.budget = (
            settings,
            client,
            coalescer,
            budget,
        )

    async def _ask(
        self, request_id: str, method: str, path: str, body: bytes = b"", ok: tuple = (200,)
    ) -> UpstreamResponse:
        with tracing.span("forward", tracing.SpanKind.CLIENT):
            headers = upstream_headers(request_id)
            answer = await self.client.request(method, path, body=body, headers=headers)
        if answer.status not in ok:
            raise grpc_codec.upstream_error(answer.status, answer.body)
        return answer

    @rpc(open_=True)
    async def ServerLive(self, request: Any, request_id: str) -> service_pb2.ServerLiveResponse:
        await self._ask(request_id, "GET", "/v2/health/live")
        return service_pb2.ServerLiveResponse(live=True)

    @rpc(open_=True)
    async def ServerReady(self, request: Any, request_id: str) -> service_pb2.ServerReadyResponse:
        answer = await self._ask(request_id, "GET", "/v2/health/ready", ok=(200, 503))
        return service_pb2.ServerReadyResponse(ready=answer.status == 200)

    @rpc(open_=True)
    async def ServerMetadata(
        self, request: Any, request_id: str
    ) -> service_pb2.ServerMetadataResponse:
        return grpc_codec.server_metadata((await self._ask(request_id, "GET", "/v2")).body)

    @rpc()
    async def ModelReady(
        self, request: service_pb2.ModelReadyRequest, request_id: str
    ) -> service_pb2.ModelReadyResponse:
        try:
            path = grpc_codec.model_path(request.name, request.version) + "/ready"
        except MLServeError:
            return service_pb2.ModelReadyResponse(ready=False)
        # A model not served (unknown, or not loaded) is not ready, as in Triton: no error.
        answer = await self._ask(request_id, "GET", path, ok=(200, 404, 503))
        return service_pb2.ModelReadyResponse(ready=answer.status == 200)

    @rpc()
    async def ModelMetadata(
        self, request: service_pb2.ModelMetadataRequest, request_id: str
    ) -> service_pb2.ModelMetadataResponse:
        path = grpc_codec.model_path(request.name, request.version)
        return grpc_codec.model_metadata((await self._ask(request_id, "GET", path)).body)

    @rpc()
    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, request_id: str
    ) -> service_pb2.ModelInferResponse:
        note_request(model=request.model_name)
        with self.budget.reservation() as held:
            held.take(request.ByteSize())  # what this call holds, against the worker's budget
            v2 = grpc_codec.infer_call(request)
            del request
            with tracing.span("forward", tracing.SpanKind.CLIENT):
                headers = {**upstream_headers(request_id), **v2.headers()}
                # small requests share calls, as on V2 REST
                answer = await self.coalescer.infer_v2(v2.target, v2.body, headers, request_id)
        if answer.status != 200:
            raise grpc_codec.upstream_error(answer.status, answer.body)
        return grpc_codec.infer_response(answer.body, answer.header_length)

    @rpc()
    async def RepositoryIndex(
        self, request: service_pb2.RepositoryIndexRequest, request_id: str
    ) -> service_pb2.RepositoryIndexResponse:
        body = b'{"ready":true}' if request.ready else b"{}"
        answer = await self._ask(request_id, "POST", "/v2/repository/index", body)
        return grpc_codec.repository_index(answer.body)

    @rpc()
    async def RepositoryModelLoad(
        self, request: service_pb2.RepositoryModelLoadRequest, request_id: str
    ) -> service_pb2.RepositoryModelLoadResponse:
        path = grpc_codec.repository_path(request.model_name, "load")
        await self._ask(request_id, "POST", path)
        return service_pb2.RepositoryModelLoadResponse()

    @rpc()
    async def RepositoryModelUnload(
        self, request: service_pb2.RepositoryModelUnloadRequest, request_id: str
    ) -> service_pb2.RepositoryModelUnloadResponse:
        path = grpc_codec.repository_path(request.model_name, "unload")
        await self._ask(request_id, "POST", path)
        return service_pb2.RepositoryModelUnloadResponse()


def check_port(host: str, port: int) -> None:
    """Refuse to start when another program holds the gRPC port: the workers bind it with
    SO_REUSEPORT, which would share it silently with another server that does too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(
                f"cannot serve gRPC on {host}:{port}: {exc.strerror} "
                "(set MLSERVE_GRPC_PORT to another port, or 0 for no gRPC)"
            ) from None


async def start(settings: Settings, service: InferenceService) -> grpc.aio.Server:
    """The worker's gRPC server on `settings.grpc_port`, with the HTTP side's limits: the
    largest message is the largest body, each connection carries at most
    `grpc_max_streams` calls at once and the worker `grpc_max_calls` (more get
    RESOURCE_EXHAUSTED), so memory held by calls is bounded."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", settings.max_body_bytes),
            ("grpc.max_concurrent_streams", settings.grpc_max_streams),
            ("grpc.so_reuseport", 1),
            *KEEPALIVE,
        ],
        maximum_concurrent_rpcs=settings.grpc_max_calls,
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(service, server)
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    logging.getLogger("mlserve").info(
        "gRPC (Open Inference Protocol) on %s:%d", settings.host, settings.grpc_port
    )
    return server
