"""A prediction as JSON bytes: encoded once when inferred, stored as is, answered as is.

The cache keeps the final bytes of the prediction; an answer is those bytes with
`cached`, `app_type` and `timings` spliced onto the end (`mlserve_common.wire.answer_json`), so
a cache hit does no JSON encoding of the prediction and no validation beyond a cheap check
that it is ours.
"""

from __future__ import annotations

import numpy as np
import orjson

from mlserve_common.wire import answer_json
from model_api.model_config import ModelConfig


def encode_prediction(
    config: ModelConfig, version: str, digest: str, image_sha256: str, row: np.ndarray
) -> bytes:
    """The `Prediction` JSON for one row of class probabilities, with its receipt: the
    model's version (folder) and digest, and the SHA-256 of the image it answers."""
    clipped = np.clip(row.astype(np.float64), 0.0, 1.0)
    index = int(clipped.argmax())  # on the array: np.argmax of a list converts it back first
    probabilities = clipped.tolist()
    return orjson.dumps(
        {
            "model": config.name,
            "version": version,
            "digest": digest,
            "sha256": image_sha256,
            "label": config.labels[index],
            "class_index": index,
            "confidence": probabilities[index],
            "probabilities": dict(zip(config.labels, probabilities, strict=True)),
        }
    )


def is_prediction_of(raw: bytes, config: ModelConfig, digest: str) -> bool:
    """True when cached bytes are a prediction of the model with this digest (a foreign or
    corrupt value is a miss, and is overwritten)."""
    return answer_json.is_prediction(raw, config.name, digest, config.labels)


def encode_v2(config: ModelConfig, digest: str, rows: np.ndarray) -> bytes:
    """What the cache keeps for a V2 inference: the model, its digest and the output."""
    return orjson.dumps(
        {
            "model": config.name,
            "digest": digest,
            "shape": list(rows.shape),
            "data": rows.astype(np.float64).ravel().tolist(),
        }
    )


def is_v2_of(raw: bytes, config: ModelConfig, digest: str) -> bool:
    """True when cached bytes are a V2 output of the model with this digest, whole."""
    try:
        value = orjson.loads(raw)
        shape = value["shape"]
        return (
            value["model"] == config.name
            and value["digest"] == digest
            and len(shape) == 2
            and shape[1] == len(config.labels)
            and len(value["data"]) == shape[0] * shape[1]
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False


def v2_rows(raw: bytes) -> np.ndarray:
    """The (N, labels) float32 probabilities a V2 cache value holds."""
    value = orjson.loads(raw)
    return np.asarray(value["data"], dtype=np.float32).reshape(value["shape"])
