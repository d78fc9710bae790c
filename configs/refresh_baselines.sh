#!/usr/bin/env bash
# Re-runs, at the current commit, the RESULTS.md sections that were last measured at an older one
# (issue 25, item 5: RESULTS.md holds only numbers today's code makes), one after another (one heavy
# job at a time on 2 cores; about 1.5 h in all, estimated from their earlier wall times):
#   1. ESGD against RMSProp on both autoencoders (the loss table, last made at 9a7f205: 1,000 steps on
#      digits, 300 on MNIST; the learned optimizer every evaluation runs is v2_mixed here);
#   2. the Hessian index along their trajectories (last made at b637ff3, 19 min), at the settings in
#      configs/spectrum_autoencoder.yaml (9a7f205's tuned ones: if step 1 tunes others, update them there);
#   3. the shipped optimizers on mnist_cnn (last made at fb5f00c, 47 min).
# Usage: bash configs/refresh_baselines.sh OUT   (needs ../shared/data/mnist for 1 and 3)
# Each step writes OUT/<step>/ and is skipped when its report already exists, so a stopped run goes on.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:?out folder}
MNIST=../shared/data/mnist
[ -d "$MNIST" ] || { echo "no MNIST in $MNIST" >&2; exit 2; }
step() {  # step NAME COMMAND...: runs COMMAND unless OUT/NAME has its report, and times it
  if [ -f "$OUT/$1/report.md" ] || [ -f "$OUT/$1/spectrum.md" ]; then echo "$1: done before"; return; fi
  local start=$SECONDS
  "${@:2}"
  echo "$1: $((SECONDS - start)) s" | tee -a "$OUT/wall_times.txt"
}
mkdir -p "$OUT"
step autoencoder_digits .venv/bin/meta-opt evaluate --checkpoint pretrained:v2_mixed \
  --tasks digits_autoencoder --steps 1000 --baselines rmsprop,esgd --out "$OUT/autoencoder_digits" \
  --no-progress "evaluation.dampings=[1e-6,1e-5,1e-4,1e-3,1e-2,0.1,1.0]" logging.mode=offline
step autoencoder_mnist .venv/bin/meta-opt evaluate --checkpoint pretrained:v2_mixed \
  --tasks mnist_autoencoder --steps 300 --seeds 8 --baselines rmsprop,esgd \
  --out "$OUT/autoencoder_mnist" --no-progress "data_dir=$MNIST" \
  "evaluation.learning_rates=[0.001,0.003,0.01,0.03,0.1,0.3,1.0]" \
  "evaluation.dampings=[0.0001,0.01,1.0]" logging.mode=offline
step spectrum_autoencoder .venv/bin/meta-opt geodesics spectrum \
  --config configs/spectrum_autoencoder.yaml --out "$OUT/spectrum_autoencoder" --no-progress
step mnist_cnn bash configs/evaluate_pretrained_cnn.sh "$OUT/mnist_cnn"
