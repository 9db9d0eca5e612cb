#!/usr/bin/env bash
# Start the MLServe stack and wait until it is healthy.
# usage: ./start_all.sh APP_TYPE MODEL_NAME    (APP_TYPE: cli|ui; MODEL_NAME: a folder in models/)
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m stackctl start "$@"
