"""`python -m model_api`: refuse an unknown MODEL_NAME at once, else serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from mlserve_common.observability import setup_logging
from model_api.config import get_settings
from model_api.model_config import ModelNotFoundError, load_model_config


def main() -> int:
    settings = get_settings()
    try:
        load_model_config(settings.models_dir, settings.model_name)
    except ModelNotFoundError as exc:
        print(f"model_api: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    uvicorn.run(
        "model_api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=30,
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
