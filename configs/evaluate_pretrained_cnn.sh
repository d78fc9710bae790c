#!/usr/bin/env bash
# The mnist_cnn row of the pretrained optimizers' evaluation (RESULTS.md, "The shipped optimizers on
# mnist_cnn"), sized for a 2-core CPU: the CNN (conv 8, conv 16, 3x3, ReLU, max-pool) on the real
# MNIST t10k images (8,000 training, 2,000 held out), both shipped optimizers against Adam (constant
# and cosine), RMSProp and SGD with momentum, 100 steps, 16 held-out seeds. Three measurement
# settings differ from configs/evaluate_pretrained.sh, for compute (see RESULTS.md): the training
# loss is measured on a fixed 1,024-image subset (eval_size, default 4,096) at 10 points of each run
# (record_points, default 50), and each baseline is tuned on 2 separate seeds (default 4). Every
# contender is measured the same way, on the same seeds.
# Usage: bash configs/evaluate_pretrained_cnn.sh OUT [a.b=value ...]   (needs ../shared/data/mnist)
set -eu
cd "$(dirname "$0")/.."
OUT=${1:?out folder}
MNIST=../shared/data/mnist
[ -d "$MNIST" ] || { echo "no MNIST in $MNIST" >&2; exit 2; }
.venv/bin/meta-opt evaluate --checkpoint pretrained:v2_mixed --checkpoint pretrained:v2_digits --out "$OUT" \
  --no-progress --baselines adam,adam_cosine,rmsprop,momentum --tuning-seeds 2 \
  "evaluation.tasks=[{name: mnist_cnn, options: {source: auto, channels: [8, 16], eval_size: 1024}}]" \
  evaluation.record_points=10 evaluation.parallel_runs=8 evaluation.seed=0 "data_dir=$MNIST" \
  logging.mode=offline "${@:2}"
