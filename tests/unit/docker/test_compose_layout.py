"""The compose files keep the architecture: one public port, a private network, health gates."""

from __future__ import annotations

import yaml

from tests.docker_files import ROOT


def load(name: str) -> dict:
    """One compose file as plain data."""
    return yaml.safe_load((ROOT / name).read_text())


COMPOSE = load("docker-compose.yml")
SERVICES = COMPOSE["services"]


def test_the_stack_has_three_services() -> None:
    assert sorted(SERVICES) == ["db_api", "model_api", "web_api"]


def test_only_web_api_publishes_ports_http_and_grpc() -> None:
    published = {name: svc["ports"] for name, svc in SERVICES.items() if svc.get("ports")}
    assert list(published) == ["web_api"]
    assert [port.rsplit(":", 1)[1] for port in published["web_api"]] == ["5000", "5001"]


def test_model_api_and_db_api_are_only_on_stack_api() -> None:
    for name in ("model_api", "db_api"):
        assert SERVICES[name]["networks"] == ["stack_api"], name
        assert "network_mode" not in SERVICES[name]
    assert COMPOSE["networks"] == {"stack_api": {"external": True}}


def test_each_service_waits_for_what_it_calls_to_be_healthy() -> None:
    """Every URL a service is given names a service it waits for, and that one has a
    healthcheck to wait on (its Dockerfile's HEALTHCHECK)."""
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        called = {
            other
            for other in SERVICES
            for value in env.values()
            if f"@{other}:" in str(value) or f"//{other}:" in str(value)
        }
        waits = {
            other
            for other, cond in service.get("depends_on", {}).items()
            if cond == {"condition": "service_healthy"}
        }
        assert called == waits, name
        for other in waits:
            dockerfile = ROOT / SERVICES[other]["build"]["dockerfile"]
            assert "HEALTHCHECK" in dockerfile.read_text(), other


def test_redis_data_outlives_the_container() -> None:
    """db_api's data folder (the entrypoint's `--dir`) is a named volume, not the container."""
    words = (ROOT / "db_api" / "entrypoint.sh").read_text().split()
    data_dir = words[words.index("--dir") + 1]
    volumes = dict(v.split(":", 1)[::-1] for v in SERVICES["db_api"]["volumes"])
    assert volumes[data_dir] in COMPOSE["volumes"]


def test_model_api_reads_its_models_from_a_read_only_mount() -> None:
    service = SERVICES["model_api"]
    mounts = {v.split(":")[1]: v.split(":")[2:] for v in service["volumes"]}
    models_dir = service["environment"]["MLSERVE_MODELS_DIR"]
    assert mounts[models_dir] == ["ro"], "model_api must not be able to change the models"


def test_app_type_and_model_name_come_from_the_environment() -> None:
    """What start_all.sh sets reaches the containers (a literal would pin one stack)."""
    assert SERVICES["web_api"]["environment"]["APP_TYPE"].startswith("${APP_TYPE")
    for name in ("web_api", "model_api"):
        assert SERVICES[name]["environment"]["MODEL_NAME"].startswith("${MODEL_NAME")


def test_gpu_variant_reserves_an_nvidia_device_for_model_api() -> None:
    gpu = load("docker-compose.gpu.yml")["services"]
    assert list(gpu) == ["model_api"]
    assert gpu["model_api"]["build"]["target"] == "gpu"
    (device,) = gpu["model_api"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
