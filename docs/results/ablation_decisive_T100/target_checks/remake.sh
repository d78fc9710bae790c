#!/usr/bin/env bash
# What other shortening settings change on the decisive T = 100 ablation's geodesic_schedule targets
# (RESULTS.md, "How converged the primary arm's targets are"): meta-seeds 0 and 1 made again with
# the given config overrides (the same config and seed, so the same pairs) and compared pair by pair
# with the 200-round sets the arm imitates (the ablation's own files where a run folder holds them,
# else made the same way). Writes OUT/seedK-LABEL/ (the targets, their card) and
# OUT/seedK-LABEL-compare/ (meta-opt geodesics compare).
# Usage (from the repository root): bash docs/results/ablation_decisive_T100/target_checks/remake.sh LABEL OVERRIDE...
#   rounds800.sh and damping.sh are the two checks made with it.
set -eu
LABEL=${1:?a label for the output folders}
shift
OUT=runs/longer_schedule
ARM=checkpoints/ablation_decisive_T100/arms/geodesic_schedule/arm.json
mkdir -p "$OUT"
.venv/bin/python -c "
import json, yaml
arm = json.load(open('$ARM'))
arm.pop('pairs')  # a note of the ablation's, not a config key
arm['name'] = 'longer_schedule'
yaml.safe_dump(arm, open('$OUT/arm.yaml', 'w'), sort_keys=False)"
for K in 0 1; do
  REFERENCE=runs/ablation/decisive_T100/arms/geodesic_schedule/targets_generated-$K.npz
  if [ ! -f "$REFERENCE" ]; then
    .venv/bin/meta-opt geodesics targets --config "$OUT/arm.yaml" --seed $K --out "$OUT/seed$K-rounds200" \
      --no-progress > /dev/null
    REFERENCE=$OUT/seed$K-rounds200/targets.npz
  fi
  start=$SECONDS
  .venv/bin/meta-opt geodesics targets --config "$OUT/arm.yaml" --seed $K --out "$OUT/seed$K-$LABEL" \
    --no-progress "$@" > "$OUT/seed$K-$LABEL.log"
  echo "seed $K: $((SECONDS - start)) s"
  .venv/bin/meta-opt geodesics compare "$REFERENCE" "$OUT/seed$K-$LABEL/targets.npz" --out "$OUT/seed$K-$LABEL-compare"
done
