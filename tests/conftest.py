"""Fixtures shared by all tests (a real redis-server, a real model_api), and the tiers:
each test is marked `unit`, `integration` or `e2e` by the folder it lives in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.redis_server import RedisServer, free_port
from harness.services import ServiceProcess, model_api_process


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with the stack's config on a free port; stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A real `python -m model_api` serving mnist with a Redis of its own, shared by the
    tests of one module (a test that stops it starts it again)."""
    folder = tmp_path_factory.mktemp("model_api")
    redis_server = RedisServer(folder / "redis").start()
    service = model_api_process("mnist", free_port(), redis_server.url, folder / "model_api.log")
    service.start()
    yield service
    service.stop()
    redis_server.stop()


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`-m unit` / `-m integration` / `-m e2e` select a tier by its folder, tests/<tier>/."""
    for item in items:
        tier = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if tier in TIERS:
            item.add_marker(tier)
