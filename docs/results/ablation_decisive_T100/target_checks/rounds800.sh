#!/usr/bin/env bash
# What a longer shortening run changes: meta-seeds 0 and 1 of the T = 100 geodesic_schedule targets
# made again with 800 rounds instead of 200 (remake.sh). On 2 cores: 664 s and 1045 s for the two
# 800-round sets (2026-12-07, AMD EPYC, alone on the cores); rounds800_seed*.md are the comparisons.
# Usage (from the repository root): bash docs/results/ablation_decisive_T100/target_checks/rounds800.sh
exec bash "$(dirname "$0")/remake.sh" rounds800 geodesics.connect.shortening.rounds=800
