#!/usr/bin/env bash
# The photo-background table of docs/results/megapixel_mnist.md: HD digits on real photos
# (experiment=photo_hd_*; data.source.backgrounds, default /usr/share/backgrounds from Debian's
# lomiri-wallpapers-16.04) with the saliency sampler, the same without its learned correction,
# and area downsampling; each seed after the other, the same wall-clock budget of training and a
# schedule of 2 epochs (runs slower than that stop at max_time, validation included). Usage:
#   scripts/photo_study.sh [out_dir] [minutes] [seeds] [variants]
# Then: python scripts/mpmnist_summary.py <out_dir> --prefix photo_hd --variants zoom,prior_only,area
set -euo pipefail
out=${1:-logs/photo_study}
minutes=${2:-4}
seeds=${3:-1 2 3}
variants=${4:-zoom prior_only area}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
# Generate (once) and scan the data set first, so that no run's wall time includes it.
"$(dirname "$py")/hdvision" check-data experiment=photo_hd_zoom > "$out/check_data.txt"
for seed in $seeds; do
  for v in $variants; do
    dir="$out/${v}_$seed"
    start=$(date +%s)
    $py train.py -m "experiment=photo_hd_$v" seed="$seed" trainer.max_epochs=2 \
      +trainer.max_time="00:00:$(printf %02d "$minutes"):00" hydra.sweep.dir="$dir" 2>&1 \
      | grep "Final metrics\|Best checkpoint\|Error" | sed "s|^|$dir: |"
    echo "$v,$seed,0,$(($(date +%s) - start))" >> "$out/wall_s.csv"
  done
done
