#!/usr/bin/env bash
# The pruning table of docs/results/pruning.md: prune a trained default-run checkpoint at three
# ratios, test each before and after `experiment=prune_finetune`. Usage:
#   scripts/prune_study.sh <run>/checkpoints/epoch_XXX.ckpt [out_dir]
# RATIOS="0.25 0.5" picks the ratios (default: 0.25 0.5 0.75).
# Then time them all in one run: hdvision compare-cost <ckpt> <out_dir>/*.ckpt ...
set -euo pipefail
ckpt=$1
out=${2:-logs/prune_study}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
for ratio in ${RATIOS:-0.25 0.5 0.75}; do
  $py -m hdvision.cli.main prune "$ckpt" --ratio "$ratio" --out "$out/pruned_$ratio.ckpt"
  $py eval.py experiment=effnet_hd ckpt_path="$out/pruned_$ratio.ckpt" \
    hydra.run.dir="$out/eval_$ratio" 2>&1 | grep "Test metrics" | sed "s/^/ratio $ratio before: /"
  $py train.py experiment=prune_finetune init_from="$out/pruned_$ratio.ckpt" \
    hydra.run.dir="$out/finetune_$ratio" 2>&1 | grep "Final metrics\|Best checkpoint" \
    | sed "s/^/ratio $ratio after: /"
done
