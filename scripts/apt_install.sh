#!/usr/bin/env bash
# apt-get install Debian packages, quietly, as root or through sudo (the one place for it).
# usage: scripts/apt_install.sh PACKAGE...
set -euo pipefail
if [ "$#" -lt 1 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
