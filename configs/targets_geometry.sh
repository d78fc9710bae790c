#!/usr/bin/env bash
# Target-geometry matrix (GEODESICS.md, "Do targets differ from chords?").
# Usage: bash configs/targets_geometry.sh [TASK ...]   (TASK: digits relu deep cubic mnist; default all)
# Env: HORIZONS="20 50 100" SCHEDULES="constant linear teacher" (defaults) to run a subset; OUT (default
# runs/targets_geometry) the folder of the cells.
# One run at a time; a cell whose runs/targets_geometry/<task>_T<T>_<schedule>/targets.json
# exists is skipped, so the script can be re-run to resume. Each run folder keeps stdout.txt
# (the printed summary plus `time`'s real/user/sys).
set -u
cd "$(dirname "$0")/.."
CLI=.venv/bin/meta-opt
CFG=configs/targets_geometry.yaml
OUT=${OUT:-runs/targets_geometry}
HORIZONS=${HORIZONS:-"20 50 100"}
SCHEDULES=${SCHEDULES:-"constant linear teacher"}
TASKS=${*:-"digits relu deep cubic mnist"}

overrides() {  # sets ARGS: the task's overrides of configs/targets_geometry.yaml
  case "$1" in
    digits) ARGS=() ;;
    relu)   ARGS=(task.options.activation=relu) ;;
    deep)   ARGS=("task.options.hidden_sizes=[20,20]") ;;
    cubic)  # configs/sweep_poly_cubic.yaml: 1-4-4-1 ReLU, teacher RMSProp 1e-2
            ARGS=(task.name=poly_cubic "task.options={hidden_sizes: [4,4], activation: relu}"
                  geodesics.baseline.name=rmsprop geodesics.baseline.hparams.learning_rate=0.01) ;;
    mnist)  # configs/sweep_mnist_mlp.yaml data; eval_size 1024 keeps eval_loss affordable
            ARGS=(task.name=mnist_mlp data_dir=../shared/data/mnist
                  "task.options={hidden_sizes: [20], activation: sigmoid, batch_size: 128, source: test_only, eval_size: 1024}") ;;
    *) echo "unknown task $1" >&2; exit 2 ;;
  esac
}

for task in $TASKS; do
  for T in $HORIZONS; do
    for sched in $SCHEDULES; do
      dir=$OUT/${task}_T${T}_${sched}
      [ -f "$dir/targets.json" ] && { echo "skip $dir"; continue; }
      mkdir -p "$dir"
      echo "$(date -u +%H:%M:%S) $dir"
      overrides "$task"
      { time $CLI geodesics targets --config $CFG --out "$dir" --no-progress \
          geodesics.targets.horizon=$T geodesics.targets.schedule=$sched "${ARGS[@]}" ; } \
          > "$dir/stdout.txt" 2>&1
      grep -E "^real|fraction of pairs" "$dir/stdout.txt"
    done
  done
done
