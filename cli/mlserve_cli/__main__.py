"""`python -m mlserve_cli` works like the `mlserve` command."""

import sys

from mlserve_cli.main import main

sys.exit(main())
