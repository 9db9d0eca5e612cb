#!/usr/bin/env bash
# Download, on the host, every wheel the Python images install, so that `docker build` needs
# no registry: the test serves this folder on loopback and the builds use it with --no-index.
# Cached in $MLSERVE_DOCKER_CACHE/wheels; downloads again when a requirements file or this changes.
# usage: scripts/docker/wheels.sh     (prints the wheel folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
wheels="${MLSERVE_DOCKER_CACHE:-/var/cache/mlserve-docker-test}/wheels"
requirements=(model_api/requirements.txt web_api/requirements.txt)
stamp="$(cat "${requirements[@]}" "$0" | sha256sum | cut -c1-16)"

if [[ ! -f "$wheels/.stamp-$stamp" ]]; then
    mkdir -p "$wheels"
    # The images run CPython 3.11 on Debian bookworm, like this host, so its wheels fit.
    # async-timeout: redis needs it on Python < 3.11.3, such as the stand-in's Debian 3.11.2.
    python3 -m pip download --quiet --only-binary=:all: --dest "$wheels" \
        "${requirements[@]/#/--requirement=}" "async-timeout>=4.0.3" >&2
    rm -f "$wheels"/.stamp-*
    touch "$wheels/.stamp-$stamp"
fi
echo "$wheels"
