#!/usr/bin/env bash
# Build the Docker images, or, without a Docker engine, prepare the local virtualenv.
# usage: ./build_all.sh
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m stackctl build
