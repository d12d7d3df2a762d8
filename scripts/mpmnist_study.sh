#!/usr/bin/env bash
# The accuracy table of docs/results/megapixel_mnist.md: each mpmnist_* experiment, one seed after
# another, with the same wall-clock budget of training (trainer.max_time; validation runs when it
# stops). The LR schedule is sized to the budget: steps = budget / the variant's training step
# measured by `hdvision cost --time-steps 5 --batch-size 16` on this 2-core CPU. Usage:
#   scripts/mpmnist_study.sh [out_dir] [minutes] [seeds] [variants]
# Then: python scripts/mpmnist_summary.py <out_dir>   (the table of docs/results/megapixel_mnist.md)
set -euo pipefail
out=${1:-logs/mpmnist_study}
minutes=${2:-4}
seeds=${3:-1 2 3}
variants=${4:-area space_to_depth zoom zoom_from_half patch_select}
py=${PYTHON:-.venv/bin/python}
declare -A step_ms=(  # one training step of 16 images, ms (hdvision cost, idle machine)
  [area]=613 [space_to_depth]=1243 [zoom]=1637 [zoom_from_half]=2075 [patch_select]=3299
)
mkdir -p "$out"
for seed in $seeds; do
  for v in $variants; do
    steps=$((minutes * 60000 / step_ms[$v]))
    epochs=$(((steps + 280) / 281))  # 4,500 training images = 281 batches of 16
    dir="$out/${v}_$seed"
    start=$(date +%s)
    $py train.py -m "experiment=mpmnist_$v" seed="$seed" trainer.max_epochs="$epochs" \
      +trainer.limit_train_batches=$((steps / epochs)) +trainer.max_time="00:00:$(printf %02d "$minutes"):00" \
      hydra.sweep.dir="$dir" 2>&1 | grep "Final metrics\|Best checkpoint\|Error" | sed "s|^|$dir: |"
    echo "$v,$seed,$steps,$(($(date +%s) - start))" >> "$out/wall_s.csv"
  done
done
