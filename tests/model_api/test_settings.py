from __future__ import annotations

import pytest
from pydantic import ValidationError

from model_api.config import Settings, default_threads
from web_api.config import Settings as WebSettings


def test_defaults_work_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_NAME", "MLSERVE_REDIS_URL", "MLSERVE_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.model_name == "mnist"
    assert settings.port == 8000 and settings.host == "127.0.0.1"
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.intra_op_threads == default_threads() >= 1


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


def test_web_settings_read_app_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TYPE", "ui")
    monkeypatch.setenv("MLSERVE_MODEL_API_URL", "http://model_api:8000")
    settings = WebSettings()
    assert settings.app_type == "ui" and settings.model_api_url == "http://model_api:8000"
    monkeypatch.setenv("APP_TYPE", "tui")
    with pytest.raises(ValidationError):
        WebSettings()
