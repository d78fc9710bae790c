#!/usr/bin/env bash
# The meta-seed spread of the shipped v2_digits recipe (RESULTS.md, "v2_digits: three meta-seeds"):
# configs/pretrain_v2.yaml meta-trained again with seeds 1 and 2 (the shipped run is seed 0, trained
# by the first command of that file into runs/pretrain/v2_digits), then all three evaluated together
# on digits_mlp at 100 steps against tuned Adam (constant and cosine) on the same 16 held-out seeds
# as the shipped evaluation (evaluation.seed=0), so the ratio's interval includes meta-training.
# Usage: bash configs/pretrain_v2_seeds.sh [OUT]   (default runs/pretrain); a finished run is skipped.
set -u
cd "$(dirname "$0")/.."
CLI=.venv/bin/meta-opt
OUT=${1:-runs/pretrain}
for seed in 1 2; do
  name=v2_digits_seed$seed
  if [ -f "$OUT/$name/done" ]; then echo "skip $name"; continue; fi
  rm -rf "${OUT:?}/$name"
  echo "$(date -u +%H:%M:%S) $name"
  { time $CLI train --config configs/pretrain_v2.yaml --out "$OUT/$name" --no-progress seed=$seed \
      logging.mode=offline ; } > "$OUT/$name.log" 2>&1 && touch "$OUT/$name/done"
  grep -E "^real" "$OUT/$name.log"
done
echo "$(date -u +%H:%M:%S) evaluate"
{ time $CLI evaluate --checkpoint seed0="$OUT/v2_digits" --checkpoint seed1="$OUT/v2_digits_seed1" \
    --checkpoint seed2="$OUT/v2_digits_seed2" --tasks digits_mlp --baselines adam,adam_cosine \
    --out "$OUT/v2_digits_seeds_evaluate" --no-progress evaluation.seed=0 logging.mode=offline ; } \
  > "$OUT/v2_digits_seeds_evaluate.log" 2>&1
grep -E "^real" "$OUT/v2_digits_seeds_evaluate.log"
