#!/usr/bin/env bash
# Create or update the peers' virtualenvs (.venv-litserve, .venv-bentoml) from their pins.
# usage: bench/peers/setup.sh [litserve] [bentoml]    (no argument: both)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $# -eq 0 ]]; then peers=(litserve bentoml); else peers=("$@"); fi
for peer in "${peers[@]}"; do
  requirements="bench/peers/requirements-$peer.txt"
  [[ -f $requirements ]] || { echo "usage: $0 [litserve] [bentoml] (unknown: $peer)" >&2; exit 2; }
  venv=".venv-$peer"
  stamp="$venv/.bench-requirements"
  if [[ -x $venv/bin/python ]] && cmp -s "$requirements" "$stamp"; then
    echo "$venv is up to date"
    continue
  fi
  echo "installing $requirements into $venv (first time: a minute or two)"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
done
