from __future__ import annotations

import hashlib
import re

import pytest

from mlserve_common.wire.cache_keys import KEY_PREFIX, cache_key, image_sha256, parse_image_sha256

ABC = image_sha256(b"abc")


def test_key_is_a_sha256_digest_under_the_prefix() -> None:
    key = cache_key("cli", "mnist", "d1", image_sha256(b"image"))
    assert key.startswith(KEY_PREFIX)
    digest = key.removeprefix(KEY_PREFIX)
    assert re.fullmatch("[0-9a-f]{64}", digest), digest


def test_image_sha256_is_the_hex_sha256_of_the_bytes() -> None:
    assert image_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_key_is_the_documented_hash_of_its_length_prefixed_parts() -> None:
    """SHA-256(app type, model, digest, SHA-256(image)), each part length-prefixed: what a
    client may recompute, and what the gateway and model_api must agree on."""
    expected = hashlib.sha256()
    for part in ("cli", "mnist", "d1", ABC):
        expected.update(len(part).to_bytes(4, "big") + part.encode())
    assert cache_key("cli", "mnist", "d1", ABC) == KEY_PREFIX + expected.hexdigest()


def test_key_is_stable() -> None:
    assert cache_key("cli", "mnist", "d1", ABC) == cache_key("cli", "mnist", "d1", ABC)


def test_every_part_changes_the_key() -> None:
    base = cache_key("cli", "mnist", "d1", ABC)
    assert cache_key("ui", "mnist", "d1", ABC) != base
    assert cache_key("cli", "leukemia", "d1", ABC) != base
    assert cache_key("cli", "mnist", "d2", ABC) != base
    assert cache_key("cli", "mnist", "d1", image_sha256(b"abd")) != base


def test_parts_cannot_bleed_into_each_other() -> None:
    # Without length prefixes, "cli"+"mnist" and "clim"+"nist" would hash the same bytes.
    assert cache_key("cli", "mnist", "d1", "") != cache_key("clim", "nist", "d1", "")
    assert cache_key("cli", "mnist", "d1", "x") != cache_key("cli", "mnist", "d1x", "")


def test_an_image_sha256_is_64_hex_digits_in_either_case() -> None:
    assert parse_image_sha256(ABC.upper()) == ABC
    for bad in ("abc", ABC[:-1] + "g", ABC + "0", ""):
        with pytest.raises(ValueError, match="64 hex digits"):
            parse_image_sha256(bad)
