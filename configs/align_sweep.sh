#!/usr/bin/env bash
# Energy sweeps with and without permutation alignment (issue 15, item 3; GEODESICS.md,
# "Permutation-aligned connections"): the same pairs (same seed) connected as trained and after
# weight matching has permuted the second network's hidden units towards the first's; every
# connected chain shortened, so lengths do not depend on the bead optimizer.
# Usage: bash configs/align_sweep.sh [OUT] [digits|mnist ...]   (default runs/align, both tasks)
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-runs/align}; shift || true
TASKS=${*:-digits mnist}
SHORT=(--no-progress geodesics.connect.shorten=true geodesics.connect.shortening.num_points=17
       geodesics.connect.shortening.rounds=200 logging.mode=offline)  # flags before the overrides
sweep() {  # NAME CONFIG [overrides...]
  local name=$1 config=$2; shift 2
  echo "$(date -u +%H:%M:%S) $name"
  { time .venv/bin/meta-opt geodesics sweep --config "$config" --out "$OUT/$name" "${SHORT[@]}" "$@" ; } \
    > "$OUT/$name.log" 2>&1
  grep -E "^real" "$OUT/$name.log"
}
mkdir -p "$OUT"
for task in $TASKS; do
  case $task in
    digits) args=(configs/sweep_digits_mlp.yaml geodesics.sweep.num_pairs=8) ;;
    mnist) args=(configs/sweep_mnist_mlp.yaml "geodesics.sweep.levels=[1.0,0.2]") ;;  # 4 pairs
    *) echo "unknown task $task (digits or mnist)" >&2; exit 2 ;;
  esac
  sweep "${task}_plain" "${args[@]}"
  sweep "${task}_aligned" "${args[@]}" geodesics.connect.align=true
done
