"""deploy/swarm/stack.yml read statically (tests/docker/test_swarm.py runs it for real)."""

from __future__ import annotations

import yaml

from harness import ROOT

STACK = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_stack_runs_the_compose_files_images() -> None:
    for name, service in STACK["services"].items():
        assert service["image"] == COMPOSE["services"][name]["image"], name


def test_only_web_api_publishes_a_port_in_host_mode() -> None:
    published = {
        name: s.get("ports", []) for name, s in STACK["services"].items() if s.get("ports")
    }
    assert list(published) == ["web_api"]
    ports = published["web_api"]
    assert [port["target"] for port in ports] == [5000, 5001]  # HTTP, gRPC
    assert all(port["mode"] == "host" for port in ports)  # no ingress mesh here


def test_replicas_dns_round_robin_and_start_first_updates() -> None:
    services = STACK["services"]
    assert all(s["deploy"]["endpoint_mode"] == "dnsrr" for s in services.values())  # no IPVS
    model_api = services["model_api"]
    assert model_api["deploy"]["replicas"] == 3
    assert model_api["deploy"]["update_config"]["order"] == "start-first"
    assert model_api["stop_grace_period"] == "35s"
    assert model_api["volumes"][0]["read_only"] is True
    assert STACK["networks"]["stack_api"]["driver"] == "overlay"
    assert "6379" not in str(services["db_api"].get("ports", ""))
