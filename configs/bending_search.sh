#!/usr/bin/env bash
# Where do pace-keeping targets bend? (GEODESICS.md, "Looking for real bending"). Teacher-schedule
# target sets of configs/targets_geometry.yaml in settings beyond the 45-cell matrix, one at a time.
# Usage: bash configs/bending_search.sh [SETTING ...]   (default: all, in the order below)
# Env: OUT (default runs/bending_search). A setting whose <OUT>/<setting>/targets.json exists is
# skipped, so the script resumes; each folder keeps stdout.txt (the summary and `time`'s output).
set -u
cd "$(dirname "$0")/.."
CLI=.venv/bin/meta-opt
CFG=configs/targets_geometry.yaml
OUT=${OUT:-runs/bending_search}
SETTINGS=${*:-"digits_T200_whole digits_late_T50 deep_narrow_T50 relu_deep_T50 autoencoder_T50 momentum_T50 adam_third_T50 cubic_T200_whole"}

overrides() {  # sets ARGS for one setting (all: geodesics.targets.schedule=teacher)
  case "$1" in
    digits_T200_whole) ARGS=(geodesics.targets.horizon=200 geodesics.targets.num_steps=200) ;;
    digits_late_T50)   ARGS=(geodesics.targets.horizon=50 geodesics.targets.num_steps=400 geodesics.targets.num_instances=1) ;;
    deep_narrow_T50)   ARGS=(geodesics.targets.horizon=50 "task.options.hidden_sizes=[10,10,10]") ;;
    relu_deep_T50)     ARGS=(geodesics.targets.horizon=50 task.options.activation=relu "task.options.hidden_sizes=[20,20]") ;;
    autoencoder_T50)   ARGS=(geodesics.targets.horizon=50 task.name=digits_autoencoder "task.options={}") ;;
    momentum_T50)      ARGS=(geodesics.targets.horizon=50 geodesics.baseline.name=momentum
                             "geodesics.baseline.hparams={learning_rate: 0.1, momentum: 0.9}") ;;
    adam_third_T50)    ARGS=(geodesics.targets.horizon=50 geodesics.baseline.hparams.learning_rate=0.0333) ;;
    cubic_T200_whole)  ARGS=(geodesics.targets.horizon=200 geodesics.targets.num_steps=200 task.name=poly_cubic
                             "task.options={hidden_sizes: [4,4], activation: relu}" geodesics.baseline.name=rmsprop
                             geodesics.baseline.hparams.learning_rate=0.01) ;;
    *) echo "unknown setting $1" >&2; exit 2 ;;
  esac
}

for setting in $SETTINGS; do
  dir=$OUT/$setting
  [ -f "$dir/targets.json" ] && { echo "skip $dir"; continue; }
  mkdir -p "$dir"
  echo "$(date -u +%H:%M:%S) $dir"
  overrides "$setting"
  { time $CLI geodesics targets --config $CFG --out "$dir" --no-progress geodesics.targets.schedule=teacher \
      "${ARGS[@]}" ; } > "$dir/stdout.txt" 2>&1
  grep -E "^real|fraction of pairs|pairs converged|chord keeps" "$dir/stdout.txt"
done
