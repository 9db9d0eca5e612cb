"""The prediction cache's keys, computed the same way wherever the cache is read: by
model_api (which reads and writes it) and by the gateway (which answers repeats from it).

A key names the model by its digest (`model_api.model_identity`): everything that shapes
an answer, so an answer never outlives the model that gave it.

Every part is length-prefixed, so no two different requests share a key.
"""

from __future__ import annotations

import hashlib
import re

KEY_PREFIX = "mlserve:prediction:"
DIGEST_PREFIX = "mlserve:model-digest:"


def model_digest_key(model_name: str) -> str:
    """Where Redis holds the digest of the model `/predict` answers with now: written by
    model_api whenever it loads a model, read by the gateway with every cache lookup, so
    that it never answers from an entry of a model that has since been reloaded."""
    return DIGEST_PREFIX + model_name


def image_sha256(image: bytes) -> str:
    """Hex SHA-256 of an image's exact bytes: what a client names it by when it asks by
    content (`GET /v1/models/{name}/predictions/{sha256}`), and the receipt in an answer."""
    return hashlib.sha256(image).hexdigest()


_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def parse_image_sha256(text: str) -> str:
    """An image's SHA-256 as a client names it (64 hex digits, either case), lowercased;
    `ValueError`, with a message for people, for anything else."""
    if not _HEX_SHA256.fullmatch(text):
        raise ValueError(
            f"{text[:80]!r} is not a SHA-256: give the image's digest as 64 hex digits"
        )
    return text.lower()


def cache_key(app_type: str, model_name: str, model_digest: str, image_digest: str) -> str:
    """SHA-256 over app type, model name, model digest and the image's SHA-256 (hex).

    The image enters by its digest, so a client that holds only the digest can ask whether
    an answer is stored (see `image_sha256`). Each part is length-prefixed, so no two
    different requests share a key.
    """
    digest = hashlib.sha256()
    for part in (str(app_type), model_name, model_digest, image_digest):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return KEY_PREFIX + digest.hexdigest()


def v2_cache_key(
    model_name: str,
    model_digest: str,
    inputs: list[tuple[str, str, tuple[int, ...], bytes]],
    outputs: list[str],
) -> str:
    """SHA-256 over a V2 inference: the model and its digest, each input's name, datatype,
    shape and bytes, and the outputs asked for; every part length-prefixed."""
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    part(b"v2")
    part(model_name.encode())
    part(model_digest.encode())
    for name, datatype, shape, raw in inputs:
        part(name.encode())
        part(datatype.encode())
        part(",".join(map(str, shape)).encode())
        part(raw)
    for name in outputs:
        part(name.encode())
    return KEY_PREFIX + "v2:" + digest.hexdigest()
