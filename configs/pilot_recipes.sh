#!/usr/bin/env bash
# Recipe screening for the pretrained optimizer (issue: a learned optimizer that beats tuned Adam):
# one meta-seed per recipe, 200 meta-steps each on digits_mlp (default task variation on), then one
# evaluation of all of them against tuned Adam and RMSProp on 16 held-out seeds at 100 steps.
# A screen, not a verdict (one seed, compute not matched: PES unrolls every instance twice).
# Usage: bash configs/pilot_recipes.sh [OUT]   (default runs/pilot); a finished recipe is skipped.
set -u
cd "$(dirname "$0")/.."
CLI=.venv/bin/meta-opt
OUT=${1:-runs/pilot}
COMMON=(--no-progress meta_train.num_meta_steps=200 meta_train.validate_every=25 meta_train.checkpoint_every=50
        logging.mode=offline)  # the overrides are one run of positional arguments: flags first
train() {  # NAME CONFIG [overrides...]
  local name=$1 config=$2; shift 2
  [ -f "$OUT/$name/done" ] && { echo "skip $name"; return; }
  rm -rf "${OUT:?}/$name"
  echo "$(date -u +%H:%M:%S) $name"
  { time $CLI train --config "$config" --out "$OUT/$name" "${COMMON[@]}" "$@" ; } > "$OUT/$name.log" 2>&1 \
    && touch "$OUT/$name/done"
  grep -E "^real" "$OUT/$name.log"
}
mkdir -p "$OUT"
train v1 configs/digits_mlp.yaml
train v2 configs/lstm_v2.yaml
train v2_pes configs/lstm_v2.yaml meta_train.estimator.name=pes
train v2_augmented configs/lstm_v2.yaml meta_train.unroll.min_horizon=20 \
  "meta_train.task_variation={input_scale_range: [0.5, 2.0], permute_labels: true, param_scale_range: [0.5, 2.0]}"
echo "$(date -u +%H:%M:%S) evaluate"
{ time $CLI evaluate --checkpoint v1="$OUT/v1" --checkpoint v2="$OUT/v2" --checkpoint v2_pes="$OUT/v2_pes" \
    --checkpoint v2_augmented="$OUT/v2_augmented" --out "$OUT/evaluate" --no-progress \
    --baselines adam,rmsprop logging.mode=offline ; } > "$OUT/evaluate.log" 2>&1
grep -E "^real" "$OUT/evaluate.log"
