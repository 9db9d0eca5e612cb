"""The HTTP calls to the gateway; every way they fail becomes one `GatewayError` line."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

_SERVED_KEYS = ("version", "provider", "labels", "description")
START_HINT = "is the stack running? ./start_all.sh cli mnist starts it"


class GatewayError(Exception):
    """A failure said in one line, for people (the server's own message when it has one)."""


class GatewayUnreachableError(GatewayError):
    """Nothing answers at the URL: no file can succeed, so the command stops."""


class GatewayClient:
    """One keep-alive connection to the MLServe gateway (`--url`)."""

    def __init__(self, url: str, timeout: float, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"x-api-key": api_key} if api_key else None
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self.http.close()

    def predict(self, path: Path, model: str | None = None) -> dict[str, Any]:
        """Classify one image file (with `model`, or the stack's own); raises `GatewayError`
        with the reason it failed."""
        try:
            image = path.read_bytes()
        except FileNotFoundError as exc:
            raise GatewayError("file not found") from exc
        except IsADirectoryError as exc:
            raise GatewayError("is a directory") from exc
        except OSError as exc:
            raise GatewayError(f"cannot read the file: {exc.strerror}") from exc
        if not image:
            raise GatewayError("the file is empty")
        return self._json(
            self._send(
                "POST",
                f"/v1/models/{quote(model, safe='')}/predict" if model else "/predict",
                content=image,
                headers={"content-type": "application/octet-stream"},
            )
        )

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of GET /health; 503 with a body means the model is down."""
        response = self._send("GET", "/health")
        return response.status_code, _body(response)

    def models(self) -> list[dict[str, Any]]:
        """Every model in the stack's repository: its versions and state (the Open Inference
        Protocol's repository index), with the served ones' version digest, provider and
        labels."""
        served = {
            m["name"]: m for m in self._json(self._send("GET", "/v1/models")).get("models", [])
        }
        response = self._send("POST", "/v2/repository/index")
        index = response.json() if response.status_code == 200 else []
        models: dict[str, dict[str, Any]] = {}
        for entry in index if isinstance(index, list) else []:
            model = models.setdefault(
                entry["name"], {"name": entry["name"], "versions": [], "state": entry["state"]}
            )
            if entry.get("version"):
                model["versions"].append(entry["version"])
        for name, metadata in served.items():
            model = models.setdefault(name, {"name": name, "versions": [], "state": "READY"})
            model.update({key: metadata.get(key) for key in _SERVED_KEYS})
        for model in models.values():
            model["ready"] = model["state"] == "READY"
        return sorted(models.values(), key=lambda m: m["name"])

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise GatewayError(f"the gateway at {self.url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise GatewayUnreachableError(
                f"cannot reach the MLServe gateway at {self.url} ({START_HINT}, or pass --url)"
            ) from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        body = _body(response)
        if response.is_error:
            message = body.get("error") or response.reason_phrase
            raise GatewayError(f"{message} (HTTP {response.status_code})")
        if not body:
            raise GatewayError(f"{self.url} did not answer like an MLServe gateway")
        return body


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
