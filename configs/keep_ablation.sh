#!/usr/bin/env bash
# Keeps what a stopped `meta-opt ablation` needs to go on in a later session or clone: its
# config.yaml, pairs.json (which pairs every arm imitates; pairs_progress.json while they are being
# drawn, meta-seed by meta-seed) and every finished arm (result.npz,
# its metrics, summary and W&B offline run; or the note of why it has no targets) and every finished
# block of meta-seeds of an arm in training (ablation.seed_block), without the
# target files (5 MB per arm and meta-seed at T = 100; the rerun makes them again only for arms
# still to train, at the recorded pairs) and without the checkpoints of an arm in training.
# Usage: bash configs/keep_ablation.sh RUN_FOLDER KEPT_FOLDER   (then git add -f KEPT_FOLDER)
# To go on: cp -r KEPT_FOLDER RUN_FOLDER, then the same `meta-opt ablation ... --out RUN_FOLDER`.
set -eu
SRC=${1:?ablation run folder} DEST=${2:?folder to keep it in}
[ -f "$SRC/config.yaml" ] || { echo "keep_ablation: $SRC holds no ablation (no config.yaml)" >&2; exit 2; }
mkdir -p "$DEST/arms"
cp "$SRC/config.yaml" "$DEST/"
for RECORD in pairs.json pairs_progress.json; do  # the pairs kept; each arm's, meta-seed by meta-seed
  if [ -f "$SRC/$RECORD" ]; then cp "$SRC/$RECORD" "$DEST/"; fi
done
copy() {  # copy FROM TO: a folder without target files and checkpoints
  rm -rf "${2:?}"
  mkdir -p "$2"
  (cd "$1" && tar cf - --exclude='targets*.npz' --exclude=checkpoints --exclude='block-*' .) | (cd "$2" && tar xf -)
}
for ARM in "$SRC"/arms/*/; do
  NAME=$(basename "$ARM")
  if [ -f "$ARM/result.npz" ] || [ -f "$ARM/no_targets.txt" ]; then
    copy "$ARM" "$DEST/arms/$NAME"
    echo "kept arm $NAME"
  fi
  for BLOCK in "$ARM"block-*/; do  # the finished blocks of meta-seeds (ablation.seed_block)
    [ -f "$BLOCK/result.npz" ] || continue
    copy "$BLOCK" "$DEST/arms/$NAME/$(basename "$BLOCK")"
    if [ -f "$ARM/target_convergence.json" ]; then  # how its targets' shortening ended, per seed
      cp "$ARM/target_convergence.json" "$DEST/arms/$NAME/"
    fi
    echo "kept arm $NAME, $(basename "$BLOCK")"
  done
done
