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
if ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
bash scripts/install_test_browser.sh
bash scripts/install_test_prometheus.sh
"$venv/bin/ruff" check .
exec "$venv/bin/python" -m pytest "$@"
