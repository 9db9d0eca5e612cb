"""The Open Inference Protocol (KServe V2) request and response bodies, with Triton's
binary tensor data extension. Pure functions of bytes: no HTTP, no model.

A request is JSON, or JSON followed by raw tensors: the `Inference-Header-Content-Length`
header gives the JSON's length, each binary input says its size in
`parameters.binary_data_size`, in input order. BYTES elements, in binary, are each a
4-byte little-endian length and the bytes; FP32 tensors are little-endian, row-major.
A response's outputs are binary when the request asks (`parameters.binary_data_output`,
or `binary_data` on one output); then the answer carries the same header.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

import numpy as np
import orjson

from mlserve_common.wire.numbers import NumberFormatError, bounded_product, parse_header_count
from mlserve_common.wire.v2_wire import HEADER_NAME

DTYPES = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "FP16": np.dtype("<f2"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "BOOL": np.dtype("?"),
}
MAX_ELEMENTS = 1 << 26
"""No tensor of a request may claim more elements than this (64 Mi)."""


class V2RequestError(ValueError):
    """The request breaks the protocol; the message says how (answered with 400)."""


@dataclass(frozen=True)
class Tensor:
    """One input: its declared name, datatype and shape, and its elements (a numpy array
    for numeric types, a list of bytes for BYTES)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]
    raw: bytes  # the elements as the cache key sees them


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None  # None: all outputs
    binary_output: bool  # the request-wide default
    parameters: dict = field(default_factory=dict)


def _object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise V2RequestError(f"{what} must be a JSON object")
    return value


def header_length_of(text: str) -> int:
    """The JSON header's length an `Inference-Header-Content-Length` value gives: ASCII
    digits only, within the spaces HTTP allows around a value (`mlserve_common.wire.numbers`);
    `V2RequestError` for anything else."""
    try:
        return parse_header_count(text, HEADER_NAME, unit="bytes")
    except NumberFormatError as exc:
        raise V2RequestError(exc.message) from None


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an inference request, JSON alone or JSON plus binary tensors; the JSON's length
    is `header_length`, the `Inference-Header-Content-Length` header as sent (None: the body
    is JSON alone)."""
    if header_length is not None:
        split = header_length_of(header_length)
        if split > len(body):
            raise V2RequestError(f"{HEADER_NAME} is {split:,} but the body has {len(body):,} bytes")
        head, binary = body[:split], memoryview(body)[split:]
    else:
        head, binary = body, memoryview(b"")
    try:
        request = _object(orjson.loads(head), "the request")
    except orjson.JSONDecodeError as exc:
        raise V2RequestError(f"the request's JSON cannot be parsed: {exc}") from None
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise V2RequestError("the request needs a non-empty 'inputs' list")
    parameters = _object(request.get("parameters") or {}, "parameters")
    offset = 0
    tensors = []
    for index, item in enumerate(inputs):
        item = _object(item, f"inputs[{index}]")
        tensor, used = _parse_input(item, binary[offset:], parameters.get("content_type"))
        offset += used
        tensors.append(tensor)
    if offset != len(binary):
        raise V2RequestError(
            f"the body carries {len(binary) - offset} bytes after the last binary input"
        )
    binary_output = bool(parameters.get("binary_data_output", False))
    outputs = None
    if request.get("outputs") is not None:
        if not isinstance(request["outputs"], list):
            raise V2RequestError("'outputs' must be a list")
        outputs = []
        for index, item in enumerate(request["outputs"]):
            item = _object(item, f"outputs[{index}]")
            name = item.get("name")
            if not isinstance(name, str):
                raise V2RequestError(f"outputs[{index}] needs a 'name'")
            own = _object(item.get("parameters") or {}, f"outputs[{index}].parameters")
            outputs.append(RequestedOutput(name, bool(own.get("binary_data", binary_output))))
    request_id = request.get("id")
    return InferRequest(
        request_id if isinstance(request_id, str) else None,
        tensors,
        outputs,
        binary_output,
        parameters,
    )


def _parse_input(
    item: dict, binary: memoryview, request_content_type: object
) -> tuple[Tensor, int]:
    """One input; `request_content_type`: the request's `content_type` parameter, which the
    input's own overrides (MLServer's convention: "base64" for BYTES sent as JSON text)."""
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not name:
        raise V2RequestError("every input needs a 'name'")
    if datatype != "BYTES" and datatype not in DTYPES:
        raise V2RequestError(f"input {name!r}: unknown datatype {datatype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise V2RequestError(f"input {name!r}: 'shape' must be a list of non-negative integers")
    count = bounded_product(shape, MAX_ELEMENTS)  # 1 for a scalar's shape []
    if count is None:
        raise V2RequestError(
            f"input {name!r}: shape {_shown(shape)} has more than {MAX_ELEMENTS} elements"
        )
    parameters = _object(item.get("parameters") or {}, f"input {name!r} parameters")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0 or size > len(binary):
            raise V2RequestError(
                f"input {name!r}: binary_data_size must be a whole number of bytes, at most "
                f"the {len(binary)} bytes that remain, not {_shown(size)}"
            )
        raw = bytes(binary[:size])
        data = _from_binary(name, datatype, raw, count)
        return Tensor(name, datatype, tuple(shape), data, raw), size
    if "data" not in item:
        raise V2RequestError(f"input {name!r} has neither 'data' nor binary_data_size")
    content_type = parameters.get("content_type", request_content_type)
    data, raw = _from_json(name, datatype, item["data"], count, content_type)
    return Tensor(name, datatype, tuple(shape), data, raw), 0


def _from_binary(name: str, datatype: str, raw: bytes, count: int) -> np.ndarray | list[bytes]:
    if datatype == "BYTES":
        elements, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise V2RequestError(f"input {name!r}: a BYTES element's length is cut off")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise V2RequestError(f"input {name!r}: a BYTES element is cut off")
            elements.append(raw[offset : offset + length])
            offset += length
        if len(elements) != count:
            raise V2RequestError(
                f"input {name!r}: shape says {count} element(s), the data holds {len(elements)}"
            )
        return elements
    dtype = DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise V2RequestError(
            f"input {name!r}: {count} {datatype} element(s) take {count * dtype.itemsize} "
            f"bytes, binary_data_size is {len(raw)}"
        )
    return np.frombuffer(raw, dtype)


def _from_json(
    name: str, datatype: str, data: object, count: int, content_type: object
) -> tuple[np.ndarray | list[bytes], bytes]:
    flat = _flatten(data)
    if len(flat) != count:
        raise V2RequestError(
            f"input {name!r}: shape says {count} element(s), 'data' holds {len(flat)}"
        )
    if datatype == "BYTES":
        base64_encoded = content_type == "base64"
        elements = []
        for element in flat:
            if not isinstance(element, str):
                raise V2RequestError(f"input {name!r}: BYTES data must be strings")
            try:
                elements.append(
                    base64.b64decode(element, validate=True)
                    if base64_encoded
                    else element.encode("utf-8")
                )
            except ValueError:
                raise V2RequestError(f"input {name!r}: an element is not valid base64") from None
        raw = b"".join(struct.pack("<I", len(e)) + e for e in elements)
        return elements, raw
    try:
        array = np.asarray(flat, dtype=DTYPES[datatype])
    except (TypeError, ValueError, OverflowError):
        raise V2RequestError(f"input {name!r}: 'data' is not all {datatype} numbers") from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise V2RequestError(f"input {name!r}: 'data' holds NaN or infinity")
    return array, array.tobytes()


def _flatten(data: object) -> list:
    """The elements of nested lists, in order; without recursion (orjson parses lists
    nested deeper than Python's recursion limit)."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(element, list) for element in data):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for element in stack[-1]:
            if isinstance(element, list):
                stack.append(iter(element))
                break
            flat.append(element)
        else:
            stack.pop()
    return flat


def _shown(value: object) -> str:
    """A value from the request, for a message: at most 80 characters of it."""
    text = repr(value[:9] if isinstance(value, list) else value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Output:
    name: str
    array: np.ndarray  # FP32
    binary: bool


def encode_response(
    model: str,
    version: str,
    request_id: str | None,
    outputs: list[Output],
    parameters: dict | None = None,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow;
    `parameters` (the model's digest, say) go in the response's own `parameters`."""
    described, blobs = [], []
    for output in outputs:
        entry: dict = {
            "name": output.name,
            "datatype": "FP32",
            "shape": list(output.array.shape),
        }
        if output.binary:
            blob = np.ascontiguousarray(output.array, "<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = output.array.astype(np.float64).ravel().tolist()
        described.append(entry)
    answer: dict = {"model_name": model, "model_version": version, "outputs": described}
    if request_id is not None:
        answer["id"] = request_id
    if parameters:
        answer["parameters"] = parameters
    head = orjson.dumps(answer)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
