#!/usr/bin/env bash
# The evaluation table of a pretrained optimizer (RESULTS.md, "A pretrained optimizer"):
# digits_mlp at the training horizon and the generalization variants (2x and 10x steps, wider,
# deeper, ReLU, real MNIST when ../shared/data/mnist holds it: the MLP, and a small CNN with
# WITH_CNN=1), the two autoencoders and two scikit-learn tables it never saw, against tuned Adam
# (constant and cosine), RMSProp and SGD with momentum (each tuned on 4 separate seeds), 16
# held-out seeds each. At most 8 runs at once (evaluation.parallel_runs: the CNN's tuning grid at
# once needs more memory than small machines have; batching changes no result).
# Usage: bash configs/evaluate_pretrained.sh CHECKPOINT[,CHECKPOINT...] OUT [a.b=value ...]
#   (CHECKPOINT: [LABEL=]a run folder, a ckpt-<step> folder, arm:ABLATION/arms/ARM@K (meta-seed
#   K of an ablation arm), arms:ABLATION (every meta-seed K of every finished arm, labelled
#   ARM_K; compare two arms with configs/compare_learned.py RESULTS A_0,...,A_4 B_0,...,B_4)
#   or pretrained:NAME; several,
#   comma-separated, are evaluated in one run against the same tuned baselines, so their
#   time-per-step columns are measured in one process; extra overrides, e.g. evaluation.seeds=8)
set -eu
cd "$(dirname "$0")/.."
CHECKPOINTS=() OUT=${2:?out folder}
IFS=, read -r -a LIST <<< "${1:?checkpoint}"
for CHECKPOINT in "${LIST[@]}"; do
  if [[ "$CHECKPOINT" == arms:* ]]; then  # every meta-seed K of every finished arm, as ARM_K
    ABLATION=${CHECKPOINT#arms:}
    SEEDS=$(.venv/bin/python -c 'import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["ablation"]["meta_seeds"])' "$ABLATION/config.yaml")
    for ARM in "$ABLATION"/arms/*/; do
      [ -f "$ARM/result.npz" ] || continue
      for ((K = 0; K < SEEDS; K++)); do
        CHECKPOINTS+=(--checkpoint "$(basename "$ARM")_$K=arm:${ARM%/}@$K")
      done
    done
  else
    CHECKPOINTS+=(--checkpoint "$CHECKPOINT")
  fi
done
MNIST=../shared/data/mnist
TASKS="{name: digits_mlp, options: {hidden_sizes: [20], activation: sigmoid, batch_size: 128}},
  {name: wine_mlp, options: {hidden_sizes: [20], activation: sigmoid, batch_size: 32}},
  {name: breast_cancer_mlp, options: {hidden_sizes: [20], activation: sigmoid, batch_size: 32}},
  {name: digits_autoencoder}"
if [ -d "$MNIST" ]; then
  TASKS="$TASKS, {name: mnist_autoencoder, options: {source: auto}}"
  # The CNN row: hours on a 2-core CPU (every tuning run measures the loss on 4,096 images 50
  # times), so only on request: WITH_CNN=1 bash configs/evaluate_pretrained.sh ...
  if [ "${WITH_CNN:-0}" = 1 ]; then
    TASKS="$TASKS, {name: mnist_cnn, options: {source: auto, channels: [8, 16]}}"
  fi
fi
.venv/bin/meta-opt evaluate "${CHECKPOINTS[@]}" --out "$OUT" --no-progress --generalization \
  --baselines adam,adam_cosine,rmsprop,momentum "evaluation.tasks=[$TASKS]" evaluation.parallel_runs=8 \
  "data_dir=$([ -d "$MNIST" ] && echo "$MNIST" || echo null)" logging.mode=offline "${@:3}"
