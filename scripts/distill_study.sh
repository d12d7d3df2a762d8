#!/usr/bin/env bash
# The distillation table of docs/results/distillation.md: the area-downsampling student alone and
# with a teacher (a trained experiment=effnet_hd checkpoint), 3 seeds each, same schedule. Usage:
#   scripts/distill_study.sh <effnet_hd run>/checkpoints/epoch_XXX.ckpt [out_dir] [epochs]
# Then: hdvision sweep-summary <out_dir>/student <out_dir>/kd --metric val/acc --metric test/acc
set -euo pipefail
teacher=$1
out=${2:-logs/distill_study}
epochs=${3:-3}
py=${PYTHON:-.venv/bin/python}
$py train.py -m experiment=stems_resize seed=1,2,3 trainer.max_epochs="$epochs" \
  hydra.sweep.dir="$out/student" 2>&1 | grep "Final metrics" || true
$py train.py -m experiment=distill_hd seed=1,2,3 trainer.max_epochs="$epochs" \
  model.distill.teacher="$teacher" hydra.sweep.dir="$out/kd" 2>&1 | grep "Final metrics" || true
