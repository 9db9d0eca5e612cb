"""The UI's client against a real model_api process and Redis (no browser needed)."""

from __future__ import annotations

import hashlib

import pytest

from harness.images import drawn_digit_seven, encode, samples
from harness.redis_server import free_port
from harness.services import ServiceProcess
from web_api.config import Settings
from web_api.ui import view
from web_api.ui.client import FRIENDLY_MESSAGES, UNAVAILABLE, UiError, UiModelClient


def client_for(url: str) -> UiModelClient:
    return UiModelClient(Settings(app_type="ui", model_name="mnist", model_api_url=url))


def test_metadata_prediction_and_cache_with_app_type_ui(model_api: ServiceProcess) -> None:
    client = client_for(model_api.url)
    metadata = client.metadata()
    assert metadata["name"] == "mnist" and metadata["version"] == "1"
    digest = metadata["digest"]
    assert len(digest) == 64
    assert view.model_identity(metadata) == f"version `1` · digest `{digest[:12]}`"
    sample, label = samples("mnist")[4]
    image = sample.read_bytes()
    first = client.predict(image)
    assert first.prediction["label"] == label and first.prediction["app_type"] == "ui"
    assert first.prediction["cached"] is False and first.round_trip_ms > 0
    sha256 = hashlib.sha256(image).hexdigest()
    receipt = (first.prediction["version"], first.prediction["digest"], first.prediction["sha256"])
    assert receipt == ("1", digest, sha256)
    assert view.receipt(first.prediction) == (
        f"Answered by **mnist** · version `1` · digest `{digest[:12]}` "
        f"· image SHA-256 `{sha256[:12]}`"
    )
    again = client.predict(image).prediction
    assert again["cached"] is True and (again["digest"], again["sha256"]) == (digest, sha256)


def test_bad_images_become_friendly_messages(model_api: ServiceProcess) -> None:
    client = client_for(model_api.url)
    cut_off_png = encode(drawn_digit_seven())[:200]
    cases = {
        b"": "empty_request",
        cut_off_png: "invalid_image",
        b"%PDF-1.5\n": "unsupported_media_type",
        b"hello, not an image": "unsupported_media_type",
    }
    for image, code in cases.items():
        with pytest.raises(UiError) as problem:
            client.predict(image)
        assert problem.value.message == FRIENDLY_MESSAGES[code]
        if image:  # sent: the detail for the logs names model_api's code and the request id
            sent = client.client.last_request_id
            assert f" {code}: " in problem.value.detail
            assert sent and f"request id {sent}" in problem.value.detail


def test_model_api_down_is_unavailable_not_a_traceback() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}")
    for call in (client.metadata, lambda: client.predict(b"\x89PNG")):
        with pytest.raises(UiError) as problem:
            call()
        assert problem.value.message == UNAVAILABLE
