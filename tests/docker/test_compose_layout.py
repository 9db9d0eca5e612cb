"""The compose files keep the architecture: one public port, a private network, health gates."""

from __future__ import annotations

import yaml

from tests.docker.conftest import ROOT


def load(name: str) -> dict:
    """One compose file as plain data."""
    return yaml.safe_load((ROOT / name).read_text())


COMPOSE = load("docker-compose.yml")
SERVICES = COMPOSE["services"]


def test_the_stack_has_three_services() -> None:
    assert sorted(SERVICES) == ["db_api", "model_api", "web_api"]


def test_only_web_api_publishes_a_port_and_it_is_5000() -> None:
    published = {name: svc["ports"] for name, svc in SERVICES.items() if svc.get("ports")}
    assert list(published) == ["web_api"]
    assert [port.rsplit(":", 1)[1] for port in published["web_api"]] == ["5000"]


def test_model_api_and_db_api_are_only_on_stack_api() -> None:
    for name in ("model_api", "db_api"):
        assert SERVICES[name]["networks"] == ["stack_api"], name
        assert "network_mode" not in SERVICES[name]
    assert COMPOSE["networks"] == {"stack_api": {"external": True}}


def test_services_wait_for_healthy_dependencies() -> None:
    assert SERVICES["web_api"]["depends_on"] == {"model_api": {"condition": "service_healthy"}}
    assert SERVICES["model_api"]["depends_on"] == {"db_api": {"condition": "service_healthy"}}


def test_redis_data_lives_in_a_named_volume() -> None:
    assert "db_data:/data" in SERVICES["db_api"]["volumes"]
    assert "db_data" in COMPOSE["volumes"]


def test_models_are_mounted_read_only() -> None:
    assert "./models:/models:ro" in SERVICES["model_api"]["volumes"]


def test_app_type_and_model_name_come_from_the_environment() -> None:
    assert SERVICES["web_api"]["environment"]["APP_TYPE"].startswith("${APP_TYPE")
    for name in ("web_api", "model_api"):
        assert SERVICES[name]["environment"]["MODEL_NAME"].startswith("${MODEL_NAME")


def test_gpu_variant_reserves_an_nvidia_device_for_model_api() -> None:
    gpu = load("docker-compose.gpu.yml")["services"]
    assert list(gpu) == ["model_api"]
    assert gpu["model_api"]["build"]["target"] == "gpu"
    (device,) = gpu["model_api"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
