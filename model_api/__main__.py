"""`python -m model_api`: refuse an unknown MODEL_NAME at once, else serve with uvicorn."""

from __future__ import annotations

import sys

from mlserve_common.runtime.server import serve
from model_api.config import get_settings
from model_api.errors import ModelNotFoundError
from model_api.model_config import load_model_config


def main() -> int:
    settings = get_settings()
    try:
        load_model_config(settings.models_dir, settings.model_name)
    except ModelNotFoundError as exc:
        print(f"model_api: {exc}", file=sys.stderr)
        return 2
    serve(
        "model_api.main:create_app",
        settings.host,
        settings.port,
        settings,
        workers=settings.workers,
        limits=settings.http_limits(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
