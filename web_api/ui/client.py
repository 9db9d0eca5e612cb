"""The UI's calls to model_api: every failure becomes one friendly `UiError`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mlserve_cli.client import MLServeClient, RequestError, TooSlowError
from mlserve_common.wire import image_formats
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


class UiModelClient:
    """model_api through MLServe's one client library (`mlserve_cli.client`, the `mlserve`
    command's): same routes, error envelope and request ids; failures said for people."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = settings.model_name
        timeout = httpx.Timeout(
            settings.model_api_timeout_seconds,
            connect=settings.model_api_connect_timeout_seconds,
        )
        self.client = MLServeClient(settings.model_api_url, timeout, app_type=APP_TYPE)

    def models(self) -> list[str]:
        """The names of the models model_api serves (MODEL_NAME and any MLSERVE_MODELS)."""
        return sorted(model["name"] for model in self._call(self.client.served))

    def metadata(self, model: str | None = None) -> dict[str, Any]:
        """A served model's name, version (folder), digest, labels and provider (default:
        MODEL_NAME)."""
        return self._call(self.client.metadata, model or self.model_name)

    def predict(self, image: bytes, model: str | None = None) -> PredictOutcome:
        """Classify one image with `model` (default: MODEL_NAME); app type `ui`, so repeats
        come from the UI's cache entries."""
        started = time.perf_counter()
        prediction = self._call(self.client.predict_bytes, image, model or self.model_name)
        return PredictOutcome(prediction, (time.perf_counter() - started) * 1000)

    def _call(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except RequestError as problem:
            raise friendly(problem) from problem


def friendly(problem: RequestError) -> UiError:
    """A failed call as a message a first-time user understands."""
    detail = f"HTTP {problem.status} {problem.code}: {problem} (request id {problem.request_id})"
    if problem.code in FRIENDLY_MESSAGES:
        return UiError(FRIENDLY_MESSAGES[problem.code], detail)
    if isinstance(problem, TooSlowError) or problem.status == 504:
        return UiError(TOO_SLOW, detail)
    status = problem.status
    # nothing answered (status None), a gateway error, or an answer that is not MLServe's
    if status is None or status < 400 or status in (502, 503):
        return UiError(UNAVAILABLE, detail)
    if status >= 500:
        return UiError(FAILED, detail)
    return UiError("The model service could not handle this image. Try another file.", detail)
