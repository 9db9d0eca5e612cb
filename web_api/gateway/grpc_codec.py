"""The Open Inference Protocol's gRPC messages (tritonclient's own `inference` protos) as the
V2 REST calls model_api answers, and back. Pure functions: no server, no network.

A `ModelInferRequest` becomes one V2 body with every input in binary (raw contents as they
are, typed contents packed the same way) and every output asked in binary, so the answer's
tensors go into `raw_output_contents` without a copy through JSON. model_api's error
envelopes become gRPC status codes (`status_code`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import grpc
import numpy as np
import orjson
from tritonclient.grpc import service_pb2

from mlserve_common.runtime.errors import InvalidRequestError, MLServeError
from mlserve_common.wire import v2_wire
from web_api.gateway.errors import UnknownModelError

# The datatypes typed contents can carry, with the field that holds them and their layout
# in binary (the protocol's: little-endian, row-major). FP16 and BF16 travel only raw.
_TYPED = {
    "BOOL": ("bool_contents", np.dtype("?")),
    "INT8": ("int_contents", np.dtype("i1")),
    "INT16": ("int_contents", np.dtype("<i2")),
    "INT32": ("int_contents", np.dtype("<i4")),
    "INT64": ("int64_contents", np.dtype("<i8")),
    "UINT8": ("uint_contents", np.dtype("u1")),
    "UINT16": ("uint_contents", np.dtype("<u2")),
    "UINT32": ("uint_contents", np.dtype("<u4")),
    "UINT64": ("uint64_contents", np.dtype("<u8")),
    "FP32": ("fp32_contents", np.dtype("<f4")),
    "FP64": ("fp64_contents", np.dtype("<f8")),
    "BYTES": ("bytes_contents", None),
}
_NAME = re.compile(r"[A-Za-z0-9_.-]+")

# model_api's (and the gateway's) HTTP statuses as gRPC codes, as Triton and KServe map them.
_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_FULL = frozenset({"overloaded", "busy", "gateway_saturated"})
"""503s that mean "too much at once, come back shortly" (a full queue, the upload budget, the
pool to model_api): RESOURCE_EXHAUSTED; any other 503 is UNAVAILABLE."""


def status_code(status: int, code: str) -> grpc.StatusCode:
    """The gRPC code of an error answered with HTTP `status` and envelope `code`."""
    if status == 503 and code in _FULL:
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if status in _STATUS:
        return _STATUS[status]
    return grpc.StatusCode.INVALID_ARGUMENT if 400 <= status < 500 else grpc.StatusCode.INTERNAL


class UpstreamError(MLServeError):
    """An error model_api answered, with its status, code and message as they came."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.code = status, code


def upstream_error(status: int, body: bytes) -> UpstreamError:
    """model_api's error answer (its JSON envelope, or whatever came) as an exception."""
    try:
        envelope = orjson.loads(body)
        message, code = str(envelope["error"]), str(envelope.get("code") or "error")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message, code = f"model_api answered {status}", "error"
    return UpstreamError(status, code, message)


def model_path(name: str, version: str = "") -> str:
    """`/v2/models/<name>[/versions/<version>]`; NOT_FOUND for a name that cannot be a model
    folder, so nothing from the client reaches model_api's path but a plain name."""
    for part in (name, version) if version else (name,):
        if not _NAME.fullmatch(part) or part in (".", ".."):
            which = f" version {version[:64]!r}" if version else ""
            raise UnknownModelError(f"model {name[:64]!r}{which} is not served here")
    return f"/v2/models/{name}" + (f"/versions/{version}" if version else "")


def repository_path(name: str, action: str) -> str:
    """`/v2/repository/models/<name>/<action>`, for a plain model name (else NOT_FOUND)."""
    model_path(name)
    return f"/v2/repository/models/{name}/{action}"


@dataclass(frozen=True)
class V2Call:
    """A V2 inference request as model_api takes it: where, what, and the JSON's length."""

    target: str
    body: bytes
    header_length: int

    def headers(self) -> dict[str, str]:
        return v2_wire.body_headers(self.header_length)


def infer_call(request: service_pb2.ModelInferRequest) -> V2Call:
    """`request` as one binary V2 body; INVALID_ARGUMENT for what no V2 body can say."""
    target = model_path(request.model_name, request.model_version) + "/infer"
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidRequestError(
            f"raw_input_contents holds {len(raw)} tensors for {len(request.inputs)} inputs"
        )
    inputs, blobs = [], []
    for index, tensor in enumerate(request.inputs):
        if raw:
            if tensor.HasField("contents"):
                raise InvalidRequestError(
                    f"input {tensor.name!r}: send raw_input_contents or typed contents, not both"
                )
            blob = raw[index]
        else:
            blob = _packed(tensor)
        inputs.append(
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "parameters": {**_values(tensor.parameters), "binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    head: dict = {
        "inputs": inputs,
        "parameters": {**_values(request.parameters), "binary_data_output": True},
    }
    if request.id:
        head["id"] = request.id
    if request.outputs:
        head["outputs"] = [_wanted(output) for output in request.outputs]
    encoded = orjson.dumps(head)
    return V2Call(target, encoded + b"".join(blobs), len(encoded))


def _wanted(output: service_pb2.ModelInferRequest.InferRequestedOutputTensor) -> dict:
    parameters = _values(output.parameters)
    if parameters.get("classification"):
        raise InvalidRequestError(
            f"output {output.name!r}: classification is not supported; ask for the output "
            "itself (its probabilities) and take the top classes from it"
        )
    return {"name": output.name, "parameters": {**parameters, "binary_data": True}}


def _packed(tensor: service_pb2.ModelInferRequest.InferInputTensor) -> bytes:
    """Typed contents in the protocol's binary layout (BYTES: each element after its 4-byte
    little-endian length)."""
    typed = _TYPED.get(tensor.datatype)
    if typed is None:
        raise InvalidRequestError(
            f"input {tensor.name!r}: {tensor.datatype!r} cannot travel in typed contents; "
            "send it in raw_input_contents"
        )
    field, dtype = typed
    values = getattr(tensor.contents, field)
    if dtype is None:
        return b"".join(struct.pack("<I", len(element)) + element for element in values)
    try:
        return np.asarray(values, dtype).tobytes()
    except OverflowError:
        raise InvalidRequestError(
            f"input {tensor.name!r}: a value is out of {tensor.datatype}'s range"
        ) from None


def _values(parameters: object) -> dict:
    """A protobuf map of `InferParameter`s as plain JSON values."""
    plain = {}
    for key, parameter in parameters.items():  # type: ignore[attr-defined]
        which = parameter.WhichOneof("parameter_choice")
        if which is not None:
            plain[key] = getattr(parameter, which)
    return plain


def infer_response(body: bytes, header_length: str | None) -> service_pb2.ModelInferResponse:
    """model_api's V2 answer as a `ModelInferResponse`, every output in raw contents."""
    split = int(header_length) if header_length is not None else len(body)
    answer = orjson.loads(body[:split])
    binary = memoryview(body)[split:]
    response = service_pb2.ModelInferResponse(
        model_name=answer["model_name"],
        model_version=str(answer.get("model_version", "")),
        id=answer.get("id") or "",
    )
    _set_values(response.parameters, answer.get("parameters") or {})
    offset = 0
    for output in answer["outputs"]:
        response.outputs.add(
            name=output["name"], datatype=output["datatype"], shape=output["shape"]
        )
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            response.raw_output_contents.append(bytes(binary[offset : offset + size]))
            offset += size
        else:  # JSON data: packed as raw, as Triton does once any output is raw
            response.raw_output_contents.append(_json_packed(output))
    return response


def _json_packed(output: dict) -> bytes:
    data = np.asarray(output["data"]).ravel()
    if output["datatype"] == "BYTES":
        elements = [str(element).encode() for element in data]
        return b"".join(struct.pack("<I", len(element)) + element for element in elements)
    return data.astype(_TYPED[output["datatype"]][1]).tobytes()


def _set_values(target: object, values: dict) -> None:
    for key, value in values.items():
        parameter = target[key]  # type: ignore[index]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, int):
            parameter.int64_param = value
        elif isinstance(value, float):
            parameter.double_param = value
        else:
            parameter.string_param = (
                value if isinstance(value, str) else orjson.dumps(value).decode()
            )


def server_metadata(body: bytes) -> service_pb2.ServerMetadataResponse:
    answer = orjson.loads(body)
    return service_pb2.ServerMetadataResponse(
        name=answer["name"], version=answer["version"], extensions=answer.get("extensions", [])
    )


def model_metadata(body: bytes) -> service_pb2.ModelMetadataResponse:
    answer = orjson.loads(body)

    def tensors(key: str) -> list[service_pb2.ModelMetadataResponse.TensorMetadata]:
        return [
            service_pb2.ModelMetadataResponse.TensorMetadata(
                name=t["name"], datatype=t["datatype"], shape=t["shape"]
            )
            for t in answer.get(key, [])
        ]

    return service_pb2.ModelMetadataResponse(
        name=answer["name"],
        versions=[str(v) for v in answer.get("versions", [])],
        platform=answer.get("platform", ""),
        inputs=tensors("inputs"),
        outputs=tensors("outputs"),
    )


def repository_index(body: bytes) -> service_pb2.RepositoryIndexResponse:
    return service_pb2.RepositoryIndexResponse(
        models=[
            service_pb2.RepositoryIndexResponse.ModelIndex(
                name=entry["name"],
                version=str(entry.get("version", "")),
                state=entry.get("state", ""),
                reason=entry.get("reason", ""),
            )
            for entry in orjson.loads(body)
        ]
    )
