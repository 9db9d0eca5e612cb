"""A prediction answer as JSON bytes: the stored prediction with how it was obtained spliced on.

Shared by model_api (which infers and stores predictions) and the gateway (which answers
repeats from the cache), so an answer has one shape whoever gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

STAGES = ("cache_lookup_ms", "decode_ms", "preprocess_ms", "inference_ms", "total_ms")


def answer(prediction: bytes, cached: bool, app_type: str, timings: dict[str, float]) -> bytes:
    """The `PredictResponse` JSON: the prediction's bytes plus how it was obtained."""
    extra = orjson.dumps(
        {
            "cached": cached,
            "app_type": app_type,
            "timings": {stage: round(timings.get(stage, 0.0), 3) for stage in STAGES},
        }
    )
    return prediction[:-1] + b"," + extra[1:]


def is_prediction(
    raw: bytes,
    model: str,
    digest: str,
    labels: Sequence[str] | None = None,
    image_sha256: str | None = None,
) -> bool:
    """True when cached bytes are a whole prediction of the model with this digest, its
    label one of `labels` and its receipt this image's when they are known (a foreign or
    corrupt value is not: a miss, which model_api answers and overwrites)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(value, dict)
        and value.get("model") == model
        and value.get("digest") == digest
        and (image_sha256 is None or value.get("sha256") == image_sha256)
        and isinstance(value.get("label"), str)
        and (labels is None or value["label"] in labels)
        and isinstance(value.get("probabilities"), dict)
    )
