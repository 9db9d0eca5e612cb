#!/usr/bin/env bash
# The real-engine Docker test: a private dockerd, local stand-ins for the base images, wheels
# served on loopback, then the docker-marked tests (build_all.sh, start_all.sh cli mnist,
# predictions, cache, isolation, db_api restart, stop_all.sh; then the Swarm stack with 3
# model_api replicas through a kill, a rolling update and scaling). Everything it made is removed
# at the end, even on failure; only the base-image tarball and the wheels stay cached.
# usage: scripts/test_docker.sh [PYTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export MLSERVE_DOCKER_CACHE="${MLSERVE_DOCKER_CACHE:-/var/cache/mlserve-docker-test}"
export MLSERVE_DOCKERD_DIR="${MLSERVE_DOCKERD_DIR:-/tmp/mlserve-dockerd}"
export DOCKER_HOST="unix://$MLSERVE_DOCKERD_DIR/docker.sock"
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    bash scripts/apt_install.sh docker.io debootstrap
fi

wheels="$(scripts/docker/wheels.sh)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" >/dev/null 2>&1 &
wheel_server=$!
run_dir="$(mktemp -d)"
trap 'kill "$wheel_server"; scripts/docker/engine.sh stop; rm -rf "$run_dir"' EXIT

scripts/docker/engine.sh start
scripts/docker/base_images.sh

export COMPOSE_FILE="docker-compose.yml:scripts/docker/compose.offline.yml"
export MLSERVE_WHEELS_URL="http://127.0.0.1:$port/"
export MLSERVE_MODE=docker MLSERVE_RUN_DIR="$run_dir"
python3 -m pytest -m docker tests/e2e/docker -p no:cacheprovider "$@"
