#!/usr/bin/env bash
# Install the browser the UI test drives (Debian's chromium) when it is missing; idempotent.
# usage: scripts/install_test_browser.sh
set -euo pipefail
if [ "$#" -ne 0 ]; then
    echo "usage: $0" >&2
    exit 2
fi
exec "$(dirname "$0")/install_debian_package.sh" chromium /usr/bin/chromium
