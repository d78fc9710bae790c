#!/usr/bin/env bash
# Do the decisive T = 100 ablation's capped geodesic_schedule paths converge when the oscillation
# damping may go below 1/16 (RESULTS.md, "How converged the primary arm's targets are")? Meta-seeds
# 0 and 1 (5 of their 16 paths stopped at the 200-round cap, cycling at a fixed amplitude) made
# again with geodesics.connect.shortening.min_damping = 1/1024 and at most 400 rounds (the same
# config and seed, so the same pairs), compared pair by pair with the 200-round sets the arm imitates
# (made the same way where no ablation run folder holds them). Each set's convergence per path is in
# its targets' card (OUT/seedK-damped/), the comparison in OUT/seedK-damped-compare/.
# Usage (from the repository root): bash docs/results/ablation_decisive_T100/target_checks/damping.sh
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
  .venv/bin/meta-opt geodesics targets --config "$OUT/arm.yaml" --seed $K --out "$OUT/seed$K-damped" \
    --no-progress geodesics.connect.shortening.rounds=400 \
    geodesics.connect.shortening.min_damping=0.0009765625 > "$OUT/seed$K-damped.log"
  echo "seed $K: $((SECONDS - start)) s"
  .venv/bin/meta-opt geodesics compare "$REFERENCE" "$OUT/seed$K-damped/targets.npz" --out "$OUT/seed$K-damped-compare"
done
