#!/usr/bin/env bash
# What a longer shortening run changes on the decisive T = 100 ablation's geodesic_schedule targets
# (RESULTS.md, "Does geodesic supervision help?"): meta-seeds 0 and 1 made again with 800 rounds
# instead of 200 (the same config and seed, so the same pairs), compared pair by pair with the
# 200-round sets the arm imitates. The 200-round set is the ablation's own file where a run folder
# holds it, else it is made the same way with 200 rounds. On 2 cores: 664 s and 1045 s for the
# two 800-round sets (2026-12-07, AMD EPYC, alone on the cores).
# Usage (from the repository root): bash docs/results/ablation_decisive_T100/target_checks/rounds800.sh
set -eu
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
  .venv/bin/meta-opt geodesics targets --config "$OUT/arm.yaml" --seed $K --out "$OUT/seed$K-rounds800" \
    --no-progress geodesics.connect.shortening.rounds=800 > /dev/null
  echo "seed $K: $((SECONDS - start)) s"
  .venv/bin/meta-opt geodesics compare "$REFERENCE" "$OUT/seed$K-rounds800/targets.npz" --out "$OUT/seed$K-compare"
done
