#!/usr/bin/env bash
# Install the browser the UI test drives (Debian's chromium) when it is missing; idempotent.
# usage: scripts/install_test_browser.sh
set -euo pipefail
if [ "$#" -ne 0 ]; then
    echo "usage: $0" >&2
    exit 2
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
