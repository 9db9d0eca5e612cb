"""A model's identity: one digest over everything that shapes its answers.

The digest covers the `.onnx` file's bytes, the fields of `config.json` that change what an
answer is (`ANSWER_FIELDS`: the input and output tensors, the labels and every preprocessing
step with its parameters, defaults filled in), and `PREPROCESS_REVISION`, which names what
the preprocessing code computes. Fields that cannot change an answer (the description, the
batching settings, the version policy, the file's name) stay out, so changing them keeps
every cached answer. The digest is what the cache keys, the gateway's hit cache and every
answer's receipt call the model; it is computed once per load, never per request.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from model_api.model_config import ModelConfig, file_sha256, load_model_config, served_versions
from model_api.preprocess import PREPROCESS_REVISION

ANSWER_FIELDS = ("input", "output", "labels", "preprocess")
"""The `config.json` fields in the digest: the ones that change what an answer is."""


def answer_config(config: ModelConfig) -> dict:
    """The part of a model's config that shapes its answers, in canonical form (every
    default written out, so `{"op": "autocontrast"}` and its spelled-out twin are equal)."""
    return config.model_dump(mode="json", include=set(ANSWER_FIELDS))


def model_digest(onnx_sha256: str, config: ModelConfig, revision: int = PREPROCESS_REVISION) -> str:
    """Hex SHA-256 of the model's weights (their SHA-256), its answer-shaping config and the
    preprocessing revision, as one canonical JSON document."""
    identity = {
        "onnx_sha256": onnx_sha256,
        "config": answer_config(config),
        "preprocess_revision": revision,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def folder_digests(models_dir: Path, name: str) -> dict[str, str]:
    """The digest of each version a model's folder serves now, by version, oldest first."""
    config = load_model_config(models_dir, name)
    found = served_versions(models_dir, config)
    return {v: model_digest(file_sha256(s.path), s.config) for v, s in found.items()}
