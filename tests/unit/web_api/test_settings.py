"""web_api's settings: the app type and model_api's address from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from web_api.config import Settings


def test_web_settings_read_app_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TYPE", "ui")
    monkeypatch.setenv("MLSERVE_MODEL_API_URL", "http://model_api:8000")
    settings = Settings()
    assert settings.app_type == "ui" and settings.model_api_url == "http://model_api:8000"
    monkeypatch.setenv("APP_TYPE", "tui")
    with pytest.raises(ValidationError):
        Settings()
