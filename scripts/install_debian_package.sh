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
bash "$(dirname "$0")/apt_install.sh" "$package"
"$command" --version | head -1
