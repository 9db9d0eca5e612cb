"""Is model_api OK, and if not, what exactly is wrong? One line per check, exit 0 if all pass.

    docker exec model_api python tests/check_model_api.py
    cd model_api && ../.venv/bin/python tests/check_model_api.py

Loads each model model_api is configured to serve (its own settings, model config and ONNX
Runtime session), runs every sample in models/<name>/samples/ through the served
preprocessing, compares the answers with samples/labels.json and reports the execution
provider. Then asks the running model_api (--url) whether it is ready, whether its cache
works, and for one prediction over HTTP; --offline checks the models alone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The repository root (/app in the image, where tests/ links to model_api/tests/) holds the
# model_api package; run from model_api/, nothing else puts it on the path.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# This process's inferences must not be counted in the running service's metrics.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from mlserve_common.stdlib_only.service_check import (  # noqa: E402
    CheckFailed,
    Report,
    as_json,
    cache_state,
    check_parser,
    fetch,
    settings_of,
)
from model_api.config import Settings  # noqa: E402
from model_api.imaging import load_image, open_image  # noqa: E402
from model_api.inference import CUDA, ModelRunner, gpu_visible  # noqa: E402
from model_api.model_config import load_model_config, served_versions  # noqa: E402
from model_api.preprocess import preprocess  # noqa: E402


def labelled_samples(models_dir: Path, model: str) -> list[tuple[Path, str]]:
    """(image, expected label) for every entry of models/<model>/samples/labels.json."""
    labels_file = models_dir / model / "samples" / "labels.json"
    if not labels_file.is_file():
        raise CheckFailed(
            f"{model}: no labelled samples to check it against: add images and {labels_file} "
            '({"file name": "label"})'
        )
    labels = json.loads(labels_file.read_text(encoding="utf-8"))
    return [(labels_file.parent / name, label) for name, label in sorted(labels.items())]


def load_runner(settings: Settings, model: str) -> ModelRunner:
    """The session model_api would serve: the model's latest version, its settings."""
    try:
        config = load_model_config(settings.models_dir, model)
        version, served = list(served_versions(settings.models_dir, config).items())[-1]
        return ModelRunner(
            served.config,
            served.path,
            settings.execution_provider,
            settings.intra_op_threads or 1,
            version,
        )
    except Exception as exc:  # any reason the model does not load is this check's answer
        raise CheckFailed(f"{model}: the model does not load: {exc}") from exc


def check_provider(settings: Settings, runner: ModelRunner) -> str:
    """Which execution provider runs the session; a GPU that was wanted but not used fails."""
    preference = settings.execution_provider
    wants_cuda = preference == "cuda" or (preference == "auto" and gpu_visible())
    offered = ", ".join(ort.get_available_providers())
    if wants_cuda and runner.provider != CUDA:
        why = "CUDA was asked for" if preference == "cuda" else "a GPU is visible"
        raise CheckFailed(
            f"{runner.config.name}: {why} but the session runs on {runner.provider}; "
            f"onnxruntime offers {offered} (the GPU image and the NVIDIA runtime are needed)"
        )
    return (
        f"{runner.config.name}: version {runner.version} (digest {runner.digest[:12]}) "
        "loaded, runs on "
        f"{runner.provider} (onnxruntime offers {offered})"
    )


def classify(settings: Settings, runner: ModelRunner, image: bytes) -> tuple[str, float]:
    """The label and confidence for one encoded image, through the served preprocessing."""
    config = runner.config
    target = (config.width, config.height)
    opened = open_image(image, settings.max_image_pixels, settings.max_decode_bytes, target)
    row = runner.run(preprocess(load_image(opened, target), config))[0]
    index = int(np.argmax(row))
    return config.labels[index], float(row[index])


def check_samples(settings: Settings, runner: ModelRunner) -> str:
    """Every labelled sample gets its label."""
    model = runner.config.name
    samples = labelled_samples(settings.models_dir, model)
    wrong, weakest = [], (2.0, "")
    for path, expected in samples:
        try:
            label, confidence = classify(settings, runner, path.read_bytes())
        except Exception as exc:  # a sample that cannot be read is a wrong answer too
            wrong.append(f"{path.name} failed: {exc}")
            continue
        if label != expected:
            wrong.append(f"{path.name} is {expected!r}, model says {label!r} ({confidence:.2f})")
        weakest = min(weakest, (confidence, path.name))
    if wrong:
        count = f"{len(wrong)} of {len(samples)} samples"
        raise CheckFailed(f"{model}: {count} classified wrongly: {'; '.join(wrong)}")
    return (
        f"{model}: all {len(samples)} samples classified as labelled "
        f"(lowest confidence {weakest[0]:.2f}, {weakest[1]})"
    )


NOT_RUNNING = (
    "; start it (./start_all.sh), point --url at it, or check the models alone with --offline"
)


def http(url: str, timeout: float, body: bytes | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or of a POST of an image when `body` is given."""
    headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
    status, raw = fetch(url, timeout, "model_api", body, headers, NOT_RUNNING)
    return status, as_json(raw)


def read_readiness(url: str, timeout: float) -> dict:
    """GET /health/ready: 200 once the model is loaded; its answer."""
    status, ready = http(f"{url}/health/ready", timeout)
    if status != 200:
        state = ready.get("status", f"HTTP {status}")
        raise CheckFailed(f"model_api at {url} answers but is not ready ({state}); retry shortly")
    return ready


def check_cache(url: str, timeout: float) -> str:
    """The cache state /health/ready reports (ok or disabled pass, degraded fails), asked
    after the prediction: model_api learns that Redis is away from a failed call."""
    return cache_state(read_readiness(url, timeout).get("cache", "unknown"), "model_api's cache")


def check_http_predict(settings: Settings, url: str, model: str, timeout: float) -> str:
    """One sample of the served model through POST /v1/models/<model>/predict."""
    path, expected = labelled_samples(settings.models_dir, model)[0]
    route = f"/v1/models/{model}/predict"
    status, answer = http(f"{url}{route}", timeout, body=path.read_bytes())
    if status != 200:
        raise CheckFailed(f"POST {route} answered {status}: {answer.get('error', answer)}")
    if answer.get("label") != expected:
        raise CheckFailed(
            f"POST {route} says {answer.get('label')!r} for {path.name}, labelled {expected!r}"
        )
    source = "from the cache" if answer.get("cached") else "computed"
    return f"POST {route} answered {expected!r} for {path.name} ({source})"


def check_models(report: Report, settings: Settings, models: list[str]) -> None:
    """Each model loads, says where it runs, and classifies its samples as labelled."""
    for model in models:
        try:
            runner = load_runner(settings, model)
        except CheckFailed as reason:
            report.fail(reason)
            continue
        report.run(check_provider, settings, runner)
        report.run(check_samples, settings, runner)


def check_service(report: Report, settings: Settings, url: str, timeout: float) -> None:
    """The running model_api: ready, its cache, one prediction."""
    try:
        ready = read_readiness(url, timeout)
    except CheckFailed as reason:
        report.fail(reason)
        return
    report.ok(f"model_api at {url} is ready: {ready['model']} on {ready.get('provider')}")
    report.run(check_http_predict, settings, url, ready["model"], timeout)
    report.run(check_cache, url, timeout)


def main() -> int:
    settings = settings_of("model_api", Settings)
    parser = check_parser(__doc__, "model_api", settings.port)
    parser.add_argument(
        "--model", help="check only this model (default: MODEL_NAME and MLSERVE_MODELS)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="check the models alone, not the service"
    )
    args = parser.parse_args()
    report = Report()
    check_models(report, settings, [args.model] if args.model else settings.models_to_load())
    if not args.offline:
        check_service(report, settings, args.url, args.timeout)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
