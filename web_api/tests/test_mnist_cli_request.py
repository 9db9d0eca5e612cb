"""Post an image to the mnist model through the gateway: the seed's request script, a
script and not a pytest test.

usage: python web_api/tests/test_mnist_cli_request.py IMAGE
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from request import post_image  # noqa: E402

if __name__ == "__main__":
    sys.exit(post_image("mnist", sys.argv))
