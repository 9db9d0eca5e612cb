from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlserve_common.runtime import cores
from model_api.config import Settings


def test_defaults_work_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_NAME", "MLSERVE_REDIS_URL", "MLSERVE_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.model_name == "mnist"
    assert settings.port == 8000 and settings.host == "127.0.0.1"
    assert settings.max_body_bytes == 10 * 1024 * 1024


def test_workers_split_the_cores_without_oversubscribing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "available_cores", lambda: 16)
    monkeypatch.setenv("MLSERVE_WORKERS", "4")
    assert (Settings().workers, Settings().intra_op_threads) == (4, 4)
    monkeypatch.setenv("MLSERVE_MODEL_API_WORKERS", "3")  # the per-service variable wins
    assert (Settings().workers, Settings().intra_op_threads) == (3, 5)
    monkeypatch.setenv("MLSERVE_MODEL_API_WORKERS", "32")  # more workers than cores: 1 each
    assert Settings().intra_op_threads == 1
    monkeypatch.setenv("MLSERVE_INTRA_OP_THREADS", "2")  # explicit beats the split
    assert Settings().intra_op_threads == 2
    monkeypatch.setenv("MLSERVE_WORKERS", "0")
    monkeypatch.delenv("MLSERVE_MODEL_API_WORKERS")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("cpu_max", "limit"), [("max 100000\n", None), ("150000 100000\n", 1.5), ("garbage", None)]
)
def test_a_cgroup_cpu_quota_is_read(tmp_path, cpu_max: str, limit: float | None) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert cores._cgroup_limit(path) == limit


def test_model_name_and_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_NAME", "leukemia")
    monkeypatch.setenv("MLSERVE_CACHE_TTL_SECONDS", "60")
    monkeypatch.setenv("MLSERVE_EXECUTION_PROVIDER", "cpu")
    settings = Settings()
    assert (settings.model_name, settings.cache_ttl_seconds) == ("leukemia", 60)
    assert settings.execution_provider == "cpu"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_EXECUTION_PROVIDER", "tpu")
    with pytest.raises(ValidationError):
        Settings()
