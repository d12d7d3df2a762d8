#!/usr/bin/env bash
# The prepared GPU check, for a session lent a GPU machine (docs/results/gpu.md). Here first:
# `make gpu-wheels`. Then one device call, carrying .whl:
#   bash scripts/gpu_check.sh        (timeout_s 540; writes $OUT/gpu_check.json)
# Installs the carried wheels into a temporary target, runs hdvision from this working tree and
# prints one table: precisions, DDP/FSDP on one device, torch.compile, the loader at 2/8/14
# workers, the default stem against the full-resolution backbone, predict on CUDA.
set -uo pipefail
cd "$(dirname "$0")/.."
ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/: run 'make gpu-wheels' here and carry .whl" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/hdvision_site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/hdvision_site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HDVISION_ROOT=/tmp/hdvision_gpu_check PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
exec timeout 500 python3 scripts/gpu_check.py --root /tmp/hdvision_gpu_check --out "${OUT:-.}"
