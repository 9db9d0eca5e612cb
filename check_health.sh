#!/usr/bin/env bash
# One line per service (healthy / degraded / down); exit 1 unless all are healthy.
# usage: ./check_health.sh
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m stackctl health
