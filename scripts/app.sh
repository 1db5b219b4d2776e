#!/usr/bin/env bash
# Install what the app needs (idempotent) and open it; with no arguments on the embedded demo bundle.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$REPO/.venv/bin/brainview" "$@"
