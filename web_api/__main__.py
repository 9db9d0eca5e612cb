"""`python -m web_api`: run the front end APP_TYPE names on the public port (one process)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from web_api.config import get_settings


def main() -> int:
    settings = get_settings()
    if settings.app_type == "cli":
        import uvicorn

        from mlserve_common.observability import setup_logging

        setup_logging(settings.log_level)
        uvicorn.run(
            "web_api.cli.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.web_port,
            log_config=None,
            timeout_graceful_shutdown=30,
            server_header=False,
        )
        return 0
    app = Path(__file__).resolve().parent / "ui" / "app.py"
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        settings.host,
        "--server.port",
        str(settings.web_port),
        "--server.headless",
        "true",
        "--client.toolbarMode",
        "viewer",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(max(1, settings.max_body_bytes // (1024 * 1024))),
    ]
    os.execv(sys.executable, argv)  # replaces this process: one process per container


if __name__ == "__main__":
    sys.exit(main())
