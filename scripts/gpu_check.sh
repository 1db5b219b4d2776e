#!/usr/bin/env bash
# The GPU path in one short run (never part of the test command): the real-size BLIP-2 captioner
# (random weights in the hub layout, built once into ~/.cache/brainview/real-size) in float16 on CUDA,
# where the parts sit, peak GPU memory, seconds per caption and per ROI decode, and the app's screenshot
# rendered with its models on the GPU (into ${1:-gpu-check}/gpu_screenshot.png).
#     bash scripts/gpu_check.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
python="${PYTHON:-.venv/bin/python}"
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU: nothing to check'"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$python" tests/benchmarks/real_size_lm.py --gpu "$out"
