#!/usr/bin/env bash
# The distillation tables of docs/results/distillation.md. For each seed: a teacher
# (experiment=effnet_hd), the student alone and the student distilled from that seed's teacher,
# all with the same epochs. Usage:
#   scripts/distill_study.sh [out_dir] [epochs] [seeds]
# STUDENT / KD name the student's two experiments (default: stems_space_to_depth / distill_hd;
# the zoom student: STUDENT=effnet_hd_half KD=distill_hd_half). A teacher already trained at
# <out_dir>/teacher_<seed>/0/checkpoints/ (e.g. a link to a default run's folder) is reused.
# Then: hdvision sweep-summary <out_dir>/{student,kd}_* --metric val/acc --metric test/acc \
#         --ignore seed --ignore model.distill.teacher
set -euo pipefail
out=${1:-logs/distill_study}
epochs=${2:-3}
seeds=${3:-1 2 3}
student=${STUDENT:-stems_space_to_depth}
kd=${KD:-distill_hd}
py=${PYTHON:-.venv/bin/python}
run() {  # run <sweep dir> <overrides...>: one job as a multirun, so that trials.csv records it
  local dir=$1
  shift
  $py train.py -m "$@" trainer.max_epochs="$epochs" hydra.sweep.dir="$dir" 2>&1 \
    | grep "Final metrics\|Best checkpoint" | sed "s|^|$dir: |"
}
best() { ls "$1"/0/checkpoints/epoch_*.ckpt 2>/dev/null | tail -n 1 || true; }
for seed in $seeds; do
  teacher=$(best "$out/teacher_$seed")
  if [ -z "$teacher" ]; then
    run "$out/teacher_$seed" experiment=effnet_hd seed="$seed"
    teacher=$(best "$out/teacher_$seed")
  fi
  run "$out/student_$seed" experiment="$student" seed="$seed"
  run "$out/kd_$seed" experiment="$kd" seed="$seed" model.distill.teacher="$teacher"
done
