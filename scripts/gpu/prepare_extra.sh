#!/usr/bin/env bash
# After ../shared/gpu/prepare.sh: make .gpu/whl hold model_api's dependencies as the GPU image
# has them (requirements-gpu.txt resolved by pip for CPython 3.12, without numpy, pillow,
# onnxruntime and the CUDA wheels, which the GPU host has, and without OpenCV: its 62 MB wheel
# would not fit a copy, and model_api needs it only for the paper steps, which the GPU check
# drops from its copy of a config when OpenCV is missing, scripts/gpu/served.py), then check
# that each copy fits.
# usage (from the project root): bash ../shared/gpu/prepare.sh && bash scripts/gpu/prepare_extra.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -eq 0 ]] || { echo "usage: bash scripts/gpu/prepare_extra.sh" >&2; exit 2; }
[[ -d .gpu/whl ]] || { echo "no .gpu/whl: run bash ../shared/gpu/prepare.sh first" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -vE '^(#|numpy|pillow|onnxruntime|nvidia-|opencv)' model_api/requirements-gpu.txt > "$work/requirements.txt"
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$work/whl" -r "$work/requirements.txt"
# the resolved wheel of a project replaces prepare.sh's, whatever version that one was
for wheel in "$work"/whl/*.whl; do
    rm -f .gpu/whl/"$(basename "$wheel" | cut -d- -f1)"-*.whl
    mv "$wheel" .gpu/whl/
done
ls .gpu/whl
# one copy carries at most 64 MiB: the work tree, and .gpu/pN (copies 1-4) or .gpu/p5 + .gpu/whl
bytes() { du -cb "$@" | tail -1 | cut -f1; }
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null || true) \
    | awk '$2 == "total" { sum += $1 } END { print sum + 0 }')
parts=(.gpu/p?)
status=0
for part in "${parts[@]}"; do
    carried=( "$part" )
    [[ "$part" == "${parts[-1]}" ]] && carried+=( .gpu/whl )
    size=$(( tree + $(bytes "${carried[@]}") ))
    echo "copy with ${carried[*]}: $(( size / 1048576 )) MiB including the work tree (limit 64)"
    (( size < 64 * 1048576 )) || { echo "  too big for one copy" >&2; status=1; }
done
exit "$status"
