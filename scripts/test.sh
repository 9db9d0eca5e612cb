#!/usr/bin/env bash
# Install what the tests need (virtualenv with the pinned packages, curl, Chromium for the
# browser test, Prometheus for the metrics test), lint, and run the whole suite. What CI
# runs; what a newcomer types.
# usage: ./scripts/test.sh [PYTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MLSERVE_VENV:-.venv}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
bash scripts/install_debian_package.sh curl
bash scripts/install_test_browser.sh
# Prometheus: the metrics test scrapes the stack with a server of its own (only the binary).
bash scripts/install_debian_package.sh prometheus
"$venv/bin/ruff" check .
exec "$venv/bin/python" -m pytest "$@"
