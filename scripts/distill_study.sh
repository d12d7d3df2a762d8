#!/usr/bin/env bash
# The distillation table of docs/results/distillation.md. For each seed: a teacher
# (experiment=effnet_hd), the student alone (experiment=stems_space_to_depth) and the student
# distilled from that seed's teacher (experiment=distill_hd), all with the same epochs. Usage:
#   scripts/distill_study.sh [out_dir] [epochs] [seeds]
# Then: hdvision sweep-summary <out_dir>/{teacher,student,kd}_* --metric val/acc --metric test/acc \
#         --ignore seed --ignore model.distill.teacher
set -euo pipefail
out=${1:-logs/distill_study}
epochs=${2:-3}
seeds=${3:-1 2 3}
py=${PYTHON:-.venv/bin/python}
run() {  # run <sweep dir> <overrides...>: one job as a multirun, so that trials.csv records it
  local dir=$1
  shift
  $py train.py -m "$@" trainer.max_epochs="$epochs" hydra.sweep.dir="$dir" 2>&1 \
    | grep "Final metrics\|Best checkpoint" | sed "s|^|$dir: |"
}
for seed in $seeds; do
  run "$out/teacher_$seed" experiment=effnet_hd seed="$seed"
  teacher=$(ls "$out/teacher_$seed"/0/checkpoints/epoch_*.ckpt | tail -n 1)
  run "$out/student_$seed" experiment=stems_space_to_depth seed="$seed"
  run "$out/kd_$seed" experiment=distill_hd seed="$seed" model.distill.teacher="$teacher"
done
