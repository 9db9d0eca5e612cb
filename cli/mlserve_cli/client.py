"""The one Python client to MLServe's HTTP API, for the `mlserve` command and the Streamlit
UI alike: the gateway on :5000 and model_api serve the same `/v1` routes and the same error
envelope `{error, code, request_id}`. Every way a call fails becomes one `RequestError`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

_SERVED_KEYS = ("version", "digest", "provider", "labels", "description")
UPLOAD_INSTEAD = {(404, "not_cached"), (503, "cache_unavailable")}
"""Answers to a question by content that mean "send the image itself"."""
START_HINT = "is the stack running? ./start_all.sh cli mnist starts it"
REQUEST_ID_HEADER = "x-request-id"


class RequestError(Exception):
    """A failed call, said in one line for people (the server's own message when it has
    one), with what the server answered: `status` (None when nothing answered), its error
    `code` and the `request_id` to find the call in the services' logs."""

    def __init__(
        self, message: str, status: int | None = None, code: str = "", request_id: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.request_id = status, code, request_id


class UnreachableError(RequestError):
    """Nothing answers at the URL: no call can succeed, so a command stops."""


class TooSlowError(RequestError):
    """The server did not answer within the timeout."""


class MLServeClient:
    """One keep-alive connection to an MLServe URL: the gateway (`--url`) or, from the UI,
    model_api. `app_type` tags the predictions (and their cache entries) with the front end
    asking; every call carries a fresh request id."""

    def __init__(
        self,
        url: str,
        timeout: float | httpx.Timeout,
        api_key: str | None = None,
        app_type: str | None = None,
        trace: bool = False,
    ) -> None:
        """`trace`: calls go in W3C traces of the client's (`new_trace`), so that a tracing
        backend the stack exports to finds them by id."""
        self.url = url.rstrip("/")
        self.app_type = app_type
        self.trace = trace
        self.trace_id: str | None = None
        self.last_request_id = ""
        """The id the last call sent (model_api and the gateway log it and answer with it)."""
        headers = {"x-api-key": api_key} if api_key else None
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self.http.close()

    def predict(self, path: Path, model: str | None = None) -> dict[str, Any]:
        """Classify one image file (with `model`, or the stack's own); raises `RequestError`
        with the reason it failed."""
        return self.predict_bytes(read_image_file(path), model)

    def predict_bytes(self, image: bytes, model: str | None = None) -> dict[str, Any]:
        """Classify one encoded image (with `model`, or the stack's own)."""
        if not image:
            raise RequestError("the file is empty", code="empty_request")
        return self._json(
            self._send(
                "POST",
                f"/v1/models/{quote(model, safe='')}/predict" if model else "/predict",
                content=image,
                params=self._app_type_params(),
                headers={"content-type": "application/octet-stream"},
            )
        )

    def stored(self, model: str, sha256: str) -> dict[str, Any] | None:
        """Ask by content: the answer `model` keeps for the image whose SHA-256 (hex) this
        is, without sending the image; None when the image must be uploaded to get one (the
        cache has no answer for it, or cannot be read now). Any other failure raises
        `RequestError`, as an upload's would."""
        response = self._send(
            "GET",
            f"/v1/models/{quote(model, safe='')}/predictions/{quote(sha256, safe='')}",
            params=self._app_type_params(),
        )
        if (response.status_code, _body(response).get("code")) in UPLOAD_INSTEAD:
            return None
        return self._json(response)

    def metadata(self, model: str) -> dict[str, Any]:
        """A served model's name, version (folder), digest, labels, tensors and execution
        provider."""
        return self._json(self._send("GET", f"/v1/models/{quote(model, safe='')}"))

    def served(self) -> list[dict[str, Any]]:
        """The served models' metadata (the latest version of each)."""
        return self._json(self._send("GET", "/v1/models")).get("models", [])

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of GET /health; 503 with a body means the model is down."""
        response = self._send("GET", "/health")
        return response.status_code, _body(response)

    def models(self) -> list[dict[str, Any]]:
        """Every model in the stack's repository: its versions and state (the Open Inference
        Protocol's repository index), with the served ones' version (folder), digest,
        provider and labels."""
        served = {m["name"]: m for m in self.served()}
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

    def default_model(self) -> str | None:
        """The model the stack answers `/predict` with (its MODEL_NAME), as its `/health`
        says; None when it does not say."""
        _, body = self.health()
        model = body.get("model")
        return model if isinstance(model, str) and model else None

    def _app_type_params(self) -> dict[str, str] | None:
        return {"app_type": self.app_type} if self.app_type else None

    def new_trace(self) -> str | None:
        """With `trace`: the calls from now on go in a new trace, whose id this is."""
        self.trace_id = secrets.token_hex(16) if self.trace else None
        return self.trace_id

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request_id = self.last_request_id = uuid.uuid4().hex
        headers = {**kwargs.pop("headers", {}), REQUEST_ID_HEADER: request_id}
        if self.trace_id is not None:  # each call a span of the client's in the trace
            headers["traceparent"] = f"00-{self.trace_id}-{secrets.token_hex(8)}-01"
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise TooSlowError(
                f"MLServe at {self.url} did not answer in time", request_id=request_id
            ) from exc
        except httpx.TransportError as exc:
            raise UnreachableError(
                f"cannot reach the MLServe gateway at {self.url} ({START_HINT}, or pass --url)",
                request_id=request_id,
            ) from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        body = _body(response)
        request_id = body.get("request_id") or response.headers.get(REQUEST_ID_HEADER, "")
        if response.is_error:
            message = body.get("error") or response.reason_phrase
            raise RequestError(
                f"{message} (HTTP {response.status_code})",
                response.status_code,
                str(body.get("code", "")),
                request_id,
            )
        if not body:
            raise RequestError(
                f"{self.url} did not answer like an MLServe service",
                response.status_code,
                request_id=request_id,
            )
        return body


def read_image_file(path: Path) -> bytes:
    """A file's bytes; `RequestError` with the reason, said in a few words, when it cannot
    be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise RequestError("file not found") from exc
    except IsADirectoryError as exc:
        raise RequestError("is a directory") from exc
    except OSError as exc:
        raise RequestError(f"cannot read the file: {exc.strerror}") from exc


def image_sha256(image: bytes) -> str:
    """The image's name when asking by content: hex SHA-256 of its exact bytes (what the
    server keys its answers by, and receipts them with)."""
    return hashlib.sha256(image).hexdigest()


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
