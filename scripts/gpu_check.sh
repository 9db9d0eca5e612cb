#!/usr/bin/env bash
# Does model_api really use the GPU? CUDA vs CPU parity, raw ONNX Runtime throughput and the
# real model_api under load, written to one JSON report (scripts/gpu/check.py); exit 1 on a
# failed check. Bounded: the check gives itself 330 s, this script stops it at 360 s.
# usage: scripts/gpu_check.sh [--cpu-smoke] [--out FILE] [--workers 1,4,8] [--duration S]
#                            [--clients N] [--model mnist|leukemia] [--batching]
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,6p' "$0" | cut -c3-; exit 0 ;; esac
python="${PYTHON:-python3}"
if [[ -z "${PYTHON:-}" && -x .venv/bin/python ]]; then python=.venv/bin/python; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --kill-after=10 360 "$python" scripts/gpu/check.py "$@"
