#!/usr/bin/env bash
# Idempotent set-up of everything brainview needs on a fresh Debian machine:
#   1. system libraries for Qt and VTK (offscreen and Xvfb) when run as root,
#   2. a virtual environment in .venv with torch pinned *before* anything that depends on it
#      (an unpinned torch resolves to a multi-GB CUDA build), then brainview and its test tools,
#   3. the non-PyPI resources of the caption metrics (WordNet for METEOR, Java for METEOR 1.5).
# A second run does nothing but checks (the venv is reinstalled only when pyproject.toml changes).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"
SYSTEM_PACKAGES=(xvfb xauth libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libglib2.0-0 libfontconfig1
  libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0
  libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxrender1 libxi6 libsm6 libx11-xcb1
  desktop-file-utils appstream)  # the last two validate packaging/linux (tests/test_packaging.py)

say() { echo "[bootstrap] $*"; }

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/tmp/brainview-apt.log 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/brainview-apt.log 2>&1 \
      || { say "apt-get failed, see /tmp/brainview-apt.log"; exit 1; }
  else
    say "WARNING: missing system packages (${missing[*]}); run as root to install them"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.brainview-installed"
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$TORCH_PIN"
  .venv/bin/python -m pip install -q -e ".[test]" "$TORCH_PIN"
  echo "$want" >"$stamp"
fi

bash scripts/install_resources.sh "$REPO/.venv/bin/python"
