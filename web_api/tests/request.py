"""Post one image file to the gateway and print its answer (stdlib only, no venv needed).

Shared by test_mnist_cli_request.py and test_leukemia_cli_request.py, the seed's scripts.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path


def post_image(model: str, argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: python {argv[0]} IMAGE_FILE   (posts it to the {model} model)")
        return 2
    path = Path(argv[1])
    if not path.is_file():
        print(f"error: no such file: {path}")
        return 2
    base = os.environ.get("MLSERVE_URL", "http://localhost:5000").rstrip("/")
    if not base.startswith(("http://", "https://")):
        print(f"error: MLSERVE_URL must be an http(s) URL, not {base!r}")
        return 2
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{base}/v1/models/{model}/predict",
        data=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"error {exc.code}: {json.loads(exc.read() or b'{}').get('error', exc.reason)}")
        return 1
    except OSError as exc:
        print(f"error: cannot reach MLServe at {base} ({exc}); is it started (./start_all.sh)?")
        return 1
    print(json.dumps(answer, indent=2))
    return 0
