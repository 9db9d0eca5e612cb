#!/usr/bin/env bash
# Stop everything start_all.sh started; Redis data is kept.
# usage: ./stop_all.sh
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m stackctl stop
