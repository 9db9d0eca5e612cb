#!/usr/bin/env bash
# Install the Prometheus server the metrics test scrapes the stack with (Debian's
# prometheus package) when it is missing; idempotent. Only the binary is used: the test
# starts its own server on a free port with its own configuration and data folder.
# usage: scripts/install_test_prometheus.sh
set -euo pipefail
if [ "$#" -ne 0 ]; then
    echo "usage: $0" >&2
    exit 2
fi
if command -v prometheus >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
prometheus --version | head -1
