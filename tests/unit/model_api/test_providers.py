"""Execution-provider choice. No GPU here: onnxruntime's offer and the device are faked,
the one place the tests use a stand-in (the CUDA path itself runs on a GPU machine)."""

from __future__ import annotations

import pytest

from model_api import inference


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch):
    def set_offer(providers: list[str], gpu: bool) -> None:
        monkeypatch.setattr(inference.ort, "get_available_providers", lambda: providers)
        monkeypatch.setattr(inference, "gpu_visible", lambda: gpu)

    return set_offer


def test_cuda_first_when_offered_and_a_gpu_is_visible(offers) -> None:
    offers([inference.CUDA, inference.CPU], gpu=True)
    assert inference.choose_providers("auto") == [inference.CUDA, inference.CPU]


@pytest.mark.parametrize(
    ("offered", "gpu", "preference"),
    [
        ([inference.CUDA, inference.CPU], False, "auto"),  # onnxruntime-gpu, no device
        ([inference.CPU], True, "auto"),  # a device, CPU-only onnxruntime
        ([inference.CUDA, inference.CPU], True, "cpu"),  # asked for the CPU
    ],
)
def test_cpu_otherwise(offers, offered, gpu, preference) -> None:
    offers(offered, gpu)
    assert inference.choose_providers(preference) == [inference.CPU]


def test_cuda_asked_but_not_offered_falls_back_with_a_warning(offers, caplog) -> None:
    offers([inference.CPU], gpu=True)
    assert inference.choose_providers("cuda") == [inference.CPU]
    assert "CUDA requested" in caplog.text


def test_gpu_visibility_respects_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert inference.gpu_visible() is False
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert inference.gpu_visible() is False
