"""stackctl's Docker mode without an engine: health from `compose ps`, the compose argv."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stackctl import docker_mode
from stackctl.settings import StackSettings
from tests.support.redis_server import free_port


def fake_ps(monkeypatch: pytest.MonkeyPatch, stdout: str) -> list[tuple[str, ...]]:
    """Answer every compose call with `stdout`; the calls are recorded."""
    calls: list[tuple[str, ...]] = []

    def compose(settings, *args, **kwargs) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout=stdout, stderr="")

    monkeypatch.setattr(docker_mode, "compose", compose)
    return calls


def row(service: str, state: str, health: str) -> dict[str, str]:
    return {"Service": service, "State": state, "Health": health}


@pytest.fixture
def settings(tmp_path) -> StackSettings:
    return StackSettings(run_dir=tmp_path, web_port=free_port())


def serve_gateway_health(port: int, body: dict) -> ThreadingHTTPServer:
    """A stand-in for the published gateway's /health (the containers are faked too)."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_health_is_healthy_when_every_container_is(monkeypatch, settings, capsys) -> None:
    rows = [row(name, "running", "healthy") for name in docker_mode.SERVICES]
    fake_ps(monkeypatch, "\n".join(json.dumps(r) for r in rows))
    assert docker_mode.health(settings) == 0
    assert capsys.readouterr().out.splitlines() == [
        "web_api: healthy",
        "model_api: healthy",
        "db_api: healthy",
    ]


def test_a_degraded_cache_makes_model_api_degraded(monkeypatch, settings, capsys) -> None:
    rows = [row(name, "running", "healthy") for name in docker_mode.SERVICES]
    fake_ps(monkeypatch, "\n".join(json.dumps(r) for r in rows))
    server = serve_gateway_health(settings.web_port, {"status": "degraded", "cache": "degraded"})
    try:
        assert docker_mode.health(settings) == 1
    finally:
        server.shutdown()
    assert "model_api: degraded" in capsys.readouterr().out.splitlines()


def test_health_tells_degraded_from_down(monkeypatch, settings, capsys) -> None:
    # Compose before 2.21 printed one JSON array instead of one object per line.
    rows = [row("web_api", "running", "starting"), row("model_api", "exited", "")]
    fake_ps(monkeypatch, json.dumps(rows))
    assert docker_mode.health(settings) == 1
    assert capsys.readouterr().out.splitlines() == [
        "web_api: degraded",
        "model_api: down",
        "db_api: down",
    ]


def test_health_with_no_containers_says_down(monkeypatch, settings, capsys) -> None:
    fake_ps(monkeypatch, "")
    assert docker_mode.health(settings) == 1
    assert capsys.readouterr().out.count(": down") == 3


def test_stop_keeps_the_volume(monkeypatch, settings) -> None:
    calls = fake_ps(monkeypatch, "")
    assert docker_mode.stop(settings) == 0
    assert calls == [("down", "--remove-orphans")]
