"""Is web_api OK, and if not, what exactly is wrong? One line per check, exit 0 if all pass.

    docker exec web_api python tests/check_web_api.py
    cd web_api && ../.venv/bin/python tests/check_web_api.py

In cli mode (APP_TYPE=cli, or --app-type): the gateway's GET /health (itself, model_api
behind it, the cache) and one POST /predict: with a labelled sample of the served model
when models/ is at hand (a checkout), else with a drawn test image (the image carries no
models). In ui mode: Streamlit's /_stcore/health and the readiness of model_api, which the
UI calls directly.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

# The repository root (/app in the image, where tests/ links to web_api/tests/) holds the
# web_api package; run from web_api/, nothing else puts it on the path.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from mlserve_common.stdlib_only.service_check import (  # noqa: E402
    CheckFailed,
    Report,
    as_json,
    cache_state,
    check_parser,
    fetch,
    settings_of,
)
from web_api.config import Settings  # noqa: E402

MODELS_DIR = ROOT / "models"
"""The checkout's models (with their labelled samples); absent in the image."""


def gateway_health(url: str, timeout: float) -> dict:
    """GET /health: the gateway's view of itself, model_api and the cache."""
    status, raw = fetch(f"{url}/health", timeout, "the gateway")
    health = as_json(raw)
    if status not in (200, 503) or "model_api" not in health:
        raise CheckFailed(f"GET {url}/health answered {status}, not the gateway's health")
    return health


def check_model_api(health: dict) -> str:
    """model_api, as the gateway sees it."""
    if health["model_api"] != "ready":
        raise CheckFailed(
            f"the gateway runs but model_api is {health['model_api']}: every prediction gets "
            "503; check model_api (docker exec model_api python tests/check_model_api.py)"
        )
    return f"model_api is ready behind the gateway ({health.get('provider')})"


def check_cache(cache: str) -> str:
    return cache_state(cache, "the cache")


def check_gateway_cache(url: str, timeout: float) -> str:
    """The cache as GET /health reports it, asked after the prediction: model_api learns
    that Redis is away from a failed call."""
    return check_cache(gateway_health(url, timeout).get("cache", "unknown"))


def image_to_send(model: str, given: Path | None) -> tuple[bytes, str, str | None]:
    """(image bytes, what it is, the expected label): --image, a labelled sample, or a drawing."""
    if given is not None:
        return given.read_bytes(), given.name, None
    labels_file = MODELS_DIR / model / "samples" / "labels.json"
    if labels_file.is_file():
        name, label = sorted(json.loads(labels_file.read_text(encoding="utf-8")).items())[0]
        return (labels_file.parent / name).read_bytes(), name, label
    image = Image.new("L", (112, 112), 255)
    ImageDraw.Draw(image).line([(30, 28), (82, 28), (50, 90)], fill=0, width=10)
    encoded = io.BytesIO()
    image.save(encoded, "PNG")
    return encoded.getvalue(), "a drawn test image", None


def check_predict(
    url: str, settings: Settings, model: str, image: Path | None, timeout: float
) -> str:
    """One POST /predict through the gateway to model_api."""
    data, what, expected = image_to_send(model, image)
    headers = {"Content-Type": "application/octet-stream"}
    if settings.api_key is not None:
        headers["X-API-Key"] = settings.api_key.get_secret_value()
    status, raw = fetch(f"{url}/predict", timeout, "the gateway", data, headers)
    answer = as_json(raw)
    if status != 200:
        hint = " (set MLSERVE_API_KEY to the gateway's key)" if status == 401 else ""
        error = answer.get("error", raw[:200])
        raise CheckFailed(f"POST /predict answered {status}: {error}{hint}")
    label = answer.get("label")
    if expected is not None and label != expected:
        raise CheckFailed(f"POST /predict says {label!r} for {what}, labelled {expected!r}")
    source = "from the cache" if answer.get("cached") else "computed"
    return f"POST /predict answered {label!r} for {what} ({source}, model {answer.get('model')})"


def check_streamlit(url: str, timeout: float) -> str:
    """Streamlit's own health route."""
    status, raw = fetch(f"{url}/_stcore/health", timeout, "the Streamlit UI")
    if status != 200:
        raise CheckFailed(f"GET {url}/_stcore/health answered {status}: {raw[:200]!r}")
    return f"the Streamlit UI answers at {url}"


def model_api_readiness(settings: Settings, timeout: float) -> dict:
    """GET /health/ready of model_api, which the UI calls directly."""
    url = settings.model_api_url.rstrip("/")
    status, raw = fetch(f"{url}/health/ready", timeout, "model_api (MLSERVE_MODEL_API_URL)")
    ready = as_json(raw)
    if status != 200:
        raise CheckFailed(f"model_api at {url} is not ready ({ready.get('status', status)})")
    return ready


def check_cli(report: Report, args: argparse.Namespace, settings: Settings) -> None:
    """The gateway, model_api and the cache as it reports them, one prediction."""
    try:
        health = gateway_health(args.url, args.timeout)
    except CheckFailed as reason:
        report.fail(reason)
        return
    report.ok(f"the gateway answers at {args.url} (serving {health.get('model')})")
    if report.run(check_model_api, health):
        model = health.get("model", settings.model_name)
        report.run(check_predict, args.url, settings, model, args.image, args.timeout)
        report.run(check_gateway_cache, args.url, args.timeout)


def check_ui(report: Report, args: argparse.Namespace, settings: Settings) -> None:
    """Streamlit, and model_api and its cache as the UI reaches them."""
    report.run(check_streamlit, args.url, args.timeout)
    try:
        ready = model_api_readiness(settings, args.timeout)
    except CheckFailed as reason:
        report.fail(reason)
        return
    report.ok(f"model_api is ready for the UI: {ready.get('model')} on {ready.get('provider')}")
    report.run(check_cache, ready.get("cache", "unknown"))


def main() -> int:
    settings = settings_of("web_api", Settings)
    parser = check_parser(__doc__, "web_api", settings.web_port)
    parser.add_argument(
        "--app-type",
        choices=("cli", "ui"),
        default=settings.app_type,
        help="which front end runs there (default: APP_TYPE, here %(default)s)",
    )
    parser.add_argument("--image", type=Path, help="the image to POST to /predict (cli mode)")
    args = parser.parse_args()
    report = Report()
    (check_cli if args.app_type == "cli" else check_ui)(report, args, settings)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
