#!/usr/bin/env bash
# Install the Debian font packages the mnist printed-digit data is rendered from; idempotent.
# usage: scripts/install_training_fonts.sh   (the families are named in training/fonts.py)
set -euo pipefail
if [ "$#" -ne 0 ]; then
    echo "usage: $0" >&2
    exit 2
fi
packages=(
    fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35
    fonts-noto-core fonts-crosextra-carlito fonts-crosextra-caladea fonts-open-sans fonts-lato
    fonts-cantarell fonts-comic-neue fonts-go fonts-hack fonts-inconsolata fonts-ebgaramond
    fonts-linuxlibertine fonts-roboto-unhinted
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
bash "$(dirname "$0")/apt_install.sh" "${missing[@]}"
echo "installed ${missing[*]}"
