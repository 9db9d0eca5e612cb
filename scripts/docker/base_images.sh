#!/usr/bin/env bash
# Stand-ins for the base images the Dockerfiles name, built locally (no registry is reachable
# from the test's engine): one Debian bookworm minbase rootfs with python3-venv and
# redis-server, imported as python:3.11-slim-bookworm and redis:7.2-bookworm.
# The rootfs tarball is cached in $MLSERVE_DOCKER_CACHE, so only the first run pays debootstrap.
# usage: scripts/docker/base_images.sh     (DOCKER_HOST must point at the test's engine)
set -euo pipefail
cache="${MLSERVE_DOCKER_CACHE:-/var/cache/mlserve-docker-test}"
tarball="$cache/bookworm-python-redis.tar"
mirror="${MLSERVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ ! -s "$tarball" ]]; then
    mkdir -p "$cache"
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,redis-server \
        bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log"
    # Match the official redis image: user redis is 999:999 and owns /data.
    chroot "$rootfs" sh -ec 'groupmod -g 999 redis; usermod -u 999 -g 999 redis
        mkdir -p /data; chown 999:999 /data; apt-get clean; rm -rf /var/lib/apt/lists/*'
    tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
fi

docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 ||
    docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
        "$tarball" python:3.11-slim-bookworm >/dev/null
docker tag python:3.11-slim-bookworm redis:7.2-bookworm
echo "base images ready: python:3.11-slim-bookworm, redis:7.2-bookworm (stand-ins)"
