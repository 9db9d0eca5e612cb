from __future__ import annotations

import re

from mlserve_common.cache_keys import KEY_PREFIX, cache_key


def test_key_is_a_sha256_digest_under_the_prefix() -> None:
    key = cache_key("cli", "mnist", "v1", b"image")
    assert key.startswith(KEY_PREFIX)
    digest = key.removeprefix(KEY_PREFIX)
    assert re.fullmatch("[0-9a-f]{64}", digest), digest


def test_key_is_stable() -> None:
    assert cache_key("cli", "mnist", "v1", b"abc") == cache_key("cli", "mnist", "v1", b"abc")


def test_every_part_changes_the_key() -> None:
    base = cache_key("cli", "mnist", "v1", b"abc")
    assert cache_key("ui", "mnist", "v1", b"abc") != base
    assert cache_key("cli", "leukemia", "v1", b"abc") != base
    assert cache_key("cli", "mnist", "v2", b"abc") != base
    assert cache_key("cli", "mnist", "v1", b"abd") != base


def test_parts_cannot_bleed_into_each_other() -> None:
    # Without length prefixes, "cli"+"mnist" and "clim"+"nist" would hash the same bytes.
    assert cache_key("cli", "mnist", "v1", b"") != cache_key("clim", "nist", "v1", b"")
    assert cache_key("cli", "mnist", "v1", b"x") != cache_key("cli", "mnist", "v1x", b"")
