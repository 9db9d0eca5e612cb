"""Redis URLs the services accept, and the ones refused at start with a reason: the
hand-written client (mlserve_common/wire/redis_pipe.py) speaks plain RESP over TCP, nothing else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlserve_common.wire.redis_pipe import RedisPipe, checked_redis_url
from model_api.config import Settings as ModelApiSettings
from web_api.config import Settings as WebApiSettings


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:pa%40ss@db_api:6379/0",
        "redis://user:secret@localhost",
        "redis://[::1]:6380/3",
    ],
)
def test_plain_redis_urls_are_accepted(url: str) -> None:
    assert checked_redis_url(url) == url
    RedisPipe(url, timeout=1)  # and the client reads them


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("rediss://:secret@cache.example:6380/0", "rediss:// (Redis over TLS) is not supported"),
        ("unix:///run/redis.sock", "not unix://"),
        ("127.0.0.1:6379", "without a scheme"),
        ("redis://", "not redis://"),
        ("redis://host:6379/zero", "database is a number"),
        ("redis://host:99999/0", "out of range"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as refused:
        checked_redis_url(url)
    assert says in str(refused.value)
    assert "secret" not in str(refused.value)  # the password is not repeated
    with pytest.raises(ValueError):
        RedisPipe(url, timeout=1)


@pytest.mark.parametrize("settings", [ModelApiSettings, WebApiSettings])
def test_both_services_refuse_them_at_start(
    settings: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_REDIS_URL", "rediss://cache.example:6380/0")
    with pytest.raises(ValidationError, match="not supported"):
        settings()
    monkeypatch.setenv("MLSERVE_REDIS_URL", "redis://db_api:6379/0")
    assert settings().redis_url == "redis://db_api:6379/0"


def test_the_gateway_without_a_cache_needs_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSERVE_REDIS_URL", raising=False)
    assert WebApiSettings().redis_url == ""


def test_the_gateway_refuses_https_to_model_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_MODEL_API_URL", "https://model_api:8000")
    monkeypatch.setenv("APP_TYPE", "cli")
    with pytest.raises(ValidationError, match="must be http://host"):
        WebApiSettings()
    monkeypatch.setenv("APP_TYPE", "ui")  # the UI's client (httpx) speaks TLS
    assert WebApiSettings().model_api_url == "https://model_api:8000"
