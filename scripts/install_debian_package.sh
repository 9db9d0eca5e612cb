#!/usr/bin/env bash
# Install a Debian package a test needs when its command is missing; idempotent.
# usage: scripts/install_debian_package.sh PACKAGE [COMMAND]   (COMMAND defaults to PACKAGE)
set -euo pipefail
if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: $0 PACKAGE [COMMAND]" >&2
    exit 2
fi
package="$1"
command="${2:-$1}"
if command -v "$command" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null
"$command" --version | head -1
