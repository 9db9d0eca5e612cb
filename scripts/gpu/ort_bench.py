"""Raw ONNX Runtime, without model_api: what the machine offers, whether the CUDA provider
really runs the models and agrees with the CPU, and how fast each provider is."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "models"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
MAX_ABS_DIFF = 1e-3


def nvidia_smi() -> dict:
    """The GPU, its driver and the CUDA version the driver supports, from nvidia-smi."""
    fields = "name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu"
    query = subprocess.run(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    )
    banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=15, check=True)
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner.stdout)
    gpus = [
        dict(zip(fields.split(","), (v.strip() for v in line.split(",")), strict=True))
        for line in query.stdout.strip().splitlines()
    ]
    return {"gpus": gpus, "driver_cuda_version": cuda.group(1) if cuda else None}


def load_cuda_libraries() -> list[str]:
    """onnxruntime.preload_dlls(), as model_api does before a CUDA session: loads CUDA and
    cuDNN from NVIDIA's pip wheels. Returns what it printed (its failures)."""
    if not hasattr(ort, "preload_dlls"):
        return [f"onnxruntime {ort.__version__} has no preload_dlls()"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        ort.preload_dlls()
    return printed.getvalue().splitlines()


def environment(with_gpu: bool) -> dict:
    info = {
        "python": platform.python_version(),
        "cores": len(os.sched_getaffinity(0)),
        "onnxruntime": ort.__version__,
        "onnxruntime_package": getattr(ort, "package_name", None),
        "onnxruntime_cuda_build": getattr(ort, "cuda_version", None) or None,
        "available_providers": ort.get_available_providers(),
        "nvidia_wheels": {
            d.metadata["Name"]: d.version
            for d in metadata.distributions()
            if (d.metadata["Name"] or "").startswith("nvidia-")
        },
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
    }
    if with_gpu:
        try:
            info["nvidia_smi"] = nvidia_smi()
        except (OSError, subprocess.SubprocessError) as exc:
            info["nvidia_smi"] = {"error": f"{type(exc).__name__}: {exc}"}
        info["preload_dlls_messages"] = load_cuda_libraries()
    return info


def model_spec(name: str) -> dict:
    config = json.loads((MODELS_DIR / name / "config.json").read_text())
    return {
        "path": str(MODELS_DIR / name / config["file"]),
        "input": config["input"]["name"],
        "output": config["output"]["name"],
        "shape": config["input"]["shape"][1:],
    }


def session(name: str, provider: str, optimize: bool = True) -> ort.InferenceSession:
    """A session like model_api's (all graph optimisations, CPU as the fallback)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    providers = [CUDA, CPU] if provider == CUDA else [CPU]
    return ort.InferenceSession(model_spec(name)["path"], options, providers=providers)


def run(sess: ort.InferenceSession, name: str, batch: np.ndarray) -> np.ndarray:
    spec = model_spec(name)
    return sess.run([spec["output"]], {spec["input"]: batch})[0]


def random_batch(name: str, size: int, seed: int) -> np.ndarray:
    shape = (size, *model_spec(name)["shape"])
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def parity(models: list[str], sizes: list[int], candidate: str, seed: int) -> list[dict]:
    """The same random batches through the candidate and the CPU: max |difference| of the
    probabilities, and whether the candidate session really runs on its provider. Without a
    GPU the candidate is the CPU with graph optimisations off, so the comparison still runs."""
    rows = []
    for name in models:
        reference = session(name, CPU)
        tested = session(name, candidate, optimize=candidate == CUDA)
        for size in sizes:
            batch = random_batch(name, size, seed + size)
            expected, got = run(reference, name, batch), run(tested, name, batch)
            diff = float(np.max(np.abs(expected - got)))
            rows.append(
                {
                    "model": name,
                    "batch": size,
                    "provider": tested.get_providers()[0],
                    "max_abs_diff": diff,
                    "same_argmax": float(np.mean(expected.argmax(1) == got.argmax(1))),
                    "ok": diff <= MAX_ABS_DIFF and tested.get_providers()[0] == candidate,
                }
            )
    return rows


def throughput(
    models: list[str], sizes: list[int], providers: list[str], seconds: float, rows: list[dict]
) -> None:
    """Session runs a second and images a second, batch by batch (host↔device copies
    included), appended to `rows` as they are measured."""
    for provider in providers:
        for name in models:
            sess = session(name, provider)
            for size in sizes:
                batch = random_batch(name, size, seed=size)
                for _ in range(3):  # first runs pick kernels (cuDNN) and grow the arena
                    run(sess, name, batch)
                runs, start = 0, time.perf_counter()
                while (elapsed := time.perf_counter() - start) < seconds:
                    run(sess, name, batch)
                    runs += 1
                rows.append(
                    {
                        "provider": sess.get_providers()[0],
                        "model": name,
                        "batch": size,
                        "inferences_per_s": round(runs / elapsed, 1),
                        "images_per_s": round(runs * size / elapsed, 1),
                        "mean_ms": round(elapsed / runs * 1000, 3),
                    }
                )
