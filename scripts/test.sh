#!/usr/bin/env bash
# Install what the tests need (virtualenv with the pinned packages, curl, Chromium for the
# browser test, Prometheus for the metrics test), lint, and run the whole suite. What CI
# runs; what a newcomer types.
# usage: ./scripts/test.sh [--fast] [PYTEST_ARGS...]
#   --fast: only tests/unit (no processes, no browser): under a minute
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
if [[ "${1:-}" == "--fast" ]]; then
    fast=true
    shift
fi
venv="${MLSERVE_VENV:-.venv}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
# Reinstall only when a requirements file changed since the last install.
stamp="$venv/.mlserve-test-requirements"
wanted="$(cat requirements-dev.txt requirements-docker-test.txt model_api/requirements.txt \
    web_api/requirements.txt training/requirements.txt cli/pyproject.toml | sha256sum)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$wanted" >"$stamp"
fi
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .  # the house style: format with `ruff format FILE...`
bash scripts/install_training_fonts.sh  # mnist's printed digits: training and its held-out figures
if $fast; then
    exec "$venv/bin/python" -m pytest tests/unit "$@"
fi
bash scripts/install_debian_package.sh curl
bash scripts/install_test_browser.sh
# Prometheus: the metrics test scrapes the stack with a server of its own (only the binary).
bash scripts/install_debian_package.sh prometheus
exec "$venv/bin/python" -m pytest "$@"
