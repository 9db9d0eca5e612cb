"""`python -m web_api`: run the front end APP_TYPE names on the public port
(the gateway in `workers` processes, the Streamlit UI in one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from web_api.config import get_settings


def main() -> int:
    settings = get_settings()
    if settings.app_type == "cli":
        from mlserve_common.runtime.server import serve

        if settings.grpc_port:
            from web_api.gateway.grpc_front import check_port

            check_port(settings.host, settings.grpc_port)
        serve(
            "web_api.gateway.main:create_app",
            settings.host,
            settings.web_port,
            settings,
            workers=settings.workers,
            limits=settings.http_limits(),
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
    os.execv(sys.executable, argv)  # replaces this process


if __name__ == "__main__":
    sys.exit(main())
