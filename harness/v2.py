"""Open Inference Protocol request bodies, as clients write them (for tests)."""

from __future__ import annotations

import base64
import struct

import numpy as np
import orjson

from mlserve_common.wire import v2_wire


def image_request(
    *images: bytes, binary: bool = True, binary_output: bool = False, request_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A request whose BYTES input `image` carries `images`: in binary (after a JSON header
    whose length a header gives) or base64 in the JSON; the body and its headers."""
    tensor: dict = {"name": "image", "datatype": "BYTES", "shape": [len(images)]}
    request: dict = {"inputs": [tensor]}
    if request_id is not None:
        request["id"] = request_id
    if binary_output:
        request["parameters"] = {"binary_data_output": True}
    if not binary:
        tensor["data"] = [base64.b64encode(image).decode("ascii") for image in images]
        tensor["parameters"] = {"content_type": "base64"}
        return orjson.dumps(request), {"content-type": "application/json"}
    blob = b"".join(struct.pack("<I", len(image)) + image for image in images)
    tensor["parameters"] = {"binary_data_size": len(blob)}
    head = orjson.dumps(request)
    return head + blob, v2_wire.body_headers(len(head))


def tensor_request(array: np.ndarray, name: str = "input") -> tuple[bytes, dict[str, str]]:
    """A request whose FP32 input `name` is `array`, as JSON numbers."""
    tensor = {
        "name": name,
        "datatype": "FP32",
        "shape": list(array.shape),
        "data": array.astype(np.float64).ravel().tolist(),
    }
    return orjson.dumps({"inputs": [tensor]}), {"content-type": "application/json"}


def output_rows(body: bytes, headers: dict[str, str] | None = None) -> np.ndarray:
    """The `probabilities` rows of an answer, JSON or binary."""
    length = (headers or {}).get(v2_wire.HEADER_LENGTH)
    head = orjson.loads(body if length is None else body[: int(length)])
    (output,) = head["outputs"]
    if length is None:
        return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    return np.frombuffer(body[int(length) :], "<f4").reshape(output["shape"])
