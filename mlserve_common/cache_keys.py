"""The prediction cache's keys, computed the same way wherever the cache is read: by
model_api (which reads and writes it) and by the gateway (which answers repeats from it).

Every part is length-prefixed, so no two different requests share a key.
"""

from __future__ import annotations

import hashlib

KEY_PREFIX = "mlserve:prediction:"


def cache_key(app_type: str, model_name: str, model_version: str, image: bytes) -> str:
    """SHA-256 over app type, model name, model version and the exact image bytes.

    Each text part is length-prefixed, so no two different requests share a key.
    """
    digest = hashlib.sha256()
    for part in (str(app_type), model_name, model_version):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    digest.update(image)
    return KEY_PREFIX + digest.hexdigest()


def v2_cache_key(
    model_name: str,
    model_version: str,
    inputs: list[tuple[str, str, tuple[int, ...], bytes]],
    outputs: list[str],
) -> str:
    """SHA-256 over a V2 inference: the model and its version, each input's name, datatype,
    shape and bytes, and the outputs asked for; every part length-prefixed."""
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    part(b"v2")
    part(model_name.encode())
    part(model_version.encode())
    for name, datatype, shape, raw in inputs:
        part(name.encode())
        part(datatype.encode())
        part(",".join(map(str, shape)).encode())
        part(raw)
    for name in outputs:
        part(name.encode())
    return KEY_PREFIX + "v2:" + digest.hexdigest()
