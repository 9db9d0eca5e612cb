"""The UI's synchronous client to model_api: every failure becomes one friendly `UiError`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from mlserve_common import image_formats
from web_api.config import Settings

APP_TYPE = "ui"

# model_api's error codes, said the way a first-time user understands them.
FRIENDLY_MESSAGES = {
    "empty_request": "The file is empty. Choose an image with a picture in it.",
    "invalid_image": "This file looks like an image but is damaged or cut short, "
    "so it cannot be read. Try another file.",
    "unsupported_media_type": "This file is not an image the model can read. "
    f"Upload a {image_formats.NAMES} picture.",
    "payload_too_large": "This image is too large. Upload a smaller picture.",
    "no_content": "The image looks blank. Draw or upload a picture with something on it.",
    "model_not_found": "The model service does not serve this model right now.",
    "model_not_ready": "The model is still loading. Try again in a few seconds.",
}
UNAVAILABLE = "The model service cannot be reached right now. Try again in a moment."
TOO_SLOW = "The model service did not answer in time. Try again in a moment."
FAILED = "The model service failed on this image. Try another file, or try again later."


class UiError(Exception):
    """A failure with a message for people (`detail` keeps the technical reason for logs)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class PredictOutcome:
    """model_api's prediction plus the round trip the UI measured."""

    prediction: dict[str, Any]
    round_trip_ms: float


class ModelApiClient:
    """Calls model_api over one keep-alive session with the settings' timeouts."""

    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.model_api_url.rstrip("/")
        self.model_name = settings.model_name
        self.max_body_bytes = settings.max_body_bytes
        self.timeout = (
            settings.model_api_connect_timeout_seconds,
            settings.model_api_timeout_seconds,
        )
        self.session = requests.Session()

    def models(self) -> list[str]:
        """The names of the models model_api serves (MODEL_NAME and any MLSERVE_MODELS)."""
        return sorted(m["name"] for m in self._call("GET", "/v1/models").json()["models"])

    def metadata(self, model: str | None = None) -> dict[str, Any]:
        """A served model's name, version, labels and provider (default: MODEL_NAME)."""
        return self._call("GET", f"/v1/models/{model or self.model_name}").json()

    def predict(self, image: bytes, model: str | None = None) -> PredictOutcome:
        """Classify one image with `model` (default: MODEL_NAME); app type `ui`, so repeats
        come from the UI's cache entries."""
        if not image:
            raise UiError(FRIENDLY_MESSAGES["empty_request"])
        if len(image) > self.max_body_bytes:
            raise UiError(FRIENDLY_MESSAGES["payload_too_large"])
        started = time.perf_counter()
        response = self._call(
            "POST",
            f"/v1/models/{model or self.model_name}/predict",
            params={"app_type": APP_TYPE},
            data=image,
            headers={"content-type": "application/octet-stream"},
        )
        round_trip_ms = (time.perf_counter() - started) * 1000
        return PredictOutcome(response.json(), round_trip_ms)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except requests.Timeout as exc:
            raise UiError(TOO_SLOW, str(exc)) from exc
        except requests.RequestException as exc:
            raise UiError(UNAVAILABLE, str(exc)) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        try:
            response.json()
        except ValueError as exc:
            raise UiError(UNAVAILABLE, "model_api answered with something other than JSON") from exc
        return response


def _error_from(response: requests.Response) -> UiError:
    """model_api's `{error, code, request_id}` envelope as a friendly message."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "") if isinstance(body, dict) else ""
    detail = f"HTTP {response.status_code} {code}: {body.get('error', '') if body else ''}"
    if code in FRIENDLY_MESSAGES:
        return UiError(FRIENDLY_MESSAGES[code], detail)
    if response.status_code in (502, 503):
        return UiError(UNAVAILABLE, detail)
    if response.status_code == 504:
        return UiError(TOO_SLOW, detail)
    if response.status_code >= 500:
        return UiError(FAILED, detail)
    return UiError("The model service could not handle this image. Try another file.", detail)
