"""What a parsed V2 inference request asks of a model: which input it sends (encoded images
or the model's own tensor), which output it wants and how, and whether they fit the model.
Every mismatch is an `InvalidRequestError` that says what the model takes instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlserve_common.wire.cache_keys import v2_cache_key
from model_api.errors import InvalidRequestError
from model_api.model_config import ModelConfig
from model_api.v2_codec import InferRequest, Tensor

IMAGE_INPUT = "image"
"""The BYTES input that carries encoded image files."""
MAX_BATCH = 256
"""Most images or tensor rows in one V2 request."""


@dataclass(frozen=True)
class V2Work:
    """A V2 request checked against its model: exactly one of `images` and `tensor` is set."""

    key: str
    """The cache key over the model, its digest, the input and the outputs asked for."""
    images: list[bytes] | None
    tensor: np.ndarray | None
    binary: bool
    """Whether the output goes back as binary tensor data."""


def checked(parsed: InferRequest, config: ModelConfig, digest: str) -> V2Work:
    """The work `parsed` asks of the model `config` describes, or `InvalidRequestError`."""
    if len(parsed.inputs) != 1:
        raise InvalidRequestError(
            f"model {config.name!r} takes one input, {inputs_text(config)}; "
            f"the request has {len(parsed.inputs)}"
        )
    (tensor,) = parsed.inputs
    wanted = parsed.outputs or []
    for output in wanted:
        if output.name != config.output.name:
            raise InvalidRequestError(
                f"model {config.name!r} has no output {output.name!r}; "
                f"its output is {config.output.name!r}"
            )
    key = v2_cache_key(
        config.name,
        digest,
        [(tensor.name, tensor.datatype, tensor.shape, tensor.raw)],
        [o.name for o in wanted],
    )
    binary = wanted[0].binary if wanted else parsed.binary_output
    if tensor.name == IMAGE_INPUT:
        return V2Work(key, _images(tensor, config), None, binary)
    if tensor.name == config.input.name:
        return V2Work(key, None, _model_input(tensor, config), binary)
    raise InvalidRequestError(
        f"model {config.name!r} has no input {tensor.name!r}; {inputs_text(config)}"
    )


def inputs_text(config: ModelConfig) -> str:
    spec = config.input
    return (
        f"either {spec.name!r} ({spec.datatype}, shape {spec.protocol_shape}, a preprocessed "
        "tensor) or "
        f"{IMAGE_INPUT!r} (BYTES, shape [N], encoded image files)"
    )


def _images(tensor: Tensor, config: ModelConfig) -> list[bytes]:
    if tensor.datatype != "BYTES":
        raise InvalidRequestError(
            f"input {IMAGE_INPUT!r} of model {config.name!r} is BYTES (encoded image files), "
            f"not {tensor.datatype}"
        )
    if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
        raise InvalidRequestError(
            f"input {IMAGE_INPUT!r} has shape [N] (or [N, 1]), not {list(tensor.shape)}"
        )
    if not 1 <= len(tensor.data) <= MAX_BATCH:
        raise InvalidRequestError(f"send 1 to {MAX_BATCH} images, not {len(tensor.data)}")
    return tensor.data


def _model_input(tensor: Tensor, config: ModelConfig) -> np.ndarray:
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
