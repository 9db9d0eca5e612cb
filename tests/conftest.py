"""Fixtures shared by all tests: a real redis-server, the real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, free_port
from tests.support.services import ServiceProcess, model_api_process


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with the stack's config on a free port; stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def model_api(redis_server: RedisServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A real `python -m model_api` serving mnist, cached in `redis_server`."""
    service = model_api_process("mnist", free_port(), redis_server.url, tmp_path / "model_api.log")
    service.start()
    yield service
    service.stop()
