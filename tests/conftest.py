"""Fixtures shared by all tests: a real redis-server, the real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with the stack's config on a free port; stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
