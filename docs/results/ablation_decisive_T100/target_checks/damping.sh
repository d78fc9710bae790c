#!/usr/bin/env bash
# Do the capped paths (5 of the 16 of meta-seeds 0 and 1 stopped at the 200-round cap, cycling at a
# fixed amplitude) converge when the oscillation damping may go below 1/16? Made again with
# min_damping 1/1024 and at most 400 rounds (remake.sh). Not run yet.
# Usage (from the repository root): bash docs/results/ablation_decisive_T100/target_checks/damping.sh
exec bash "$(dirname "$0")/remake.sh" damped geodesics.connect.shortening.rounds=400 \
  geodesics.connect.shortening.min_damping=0.0009765625
