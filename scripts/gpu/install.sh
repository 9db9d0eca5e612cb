#!/usr/bin/env bash
# On the GPU host: join the onnxruntime-gpu parts (earlier copies left parts 0-3 in /tmp/w,
# this copy brings .gpu/p5), install it and the service wheels into /tmp/site.
# Then: export PYTHONPATH=/tmp/site (this script prints the line to eval).
# A copy of shared/gpu/install.sh, in the checkout because only the checkout travels.
# usage (on the GPU host, from the project root): bash scripts/gpu/install.sh
set -euo pipefail
mkdir -p /tmp/w /tmp/ort
cp .gpu/p*/part* /tmp/w/ 2>/dev/null || true
name=$(cat .gpu/p*/name | head -1)
cat /tmp/w/part? > "/tmp/ort/$name"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site /tmp/ort/*.whl .gpu/whl/*.whl
PYTHONPATH=/tmp/site python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
echo "export PYTHONPATH=/tmp/site"
