#!/usr/bin/env bash
# Keeps what a stopped `meta-opt train` run needs to go on bit for bit in a later session or
# another clone: config.yaml, its newest checkpoint (the whole meta-state: meta-parameters, outer
# state, every instance's parameters and optimizer state, keys, step), metrics.jsonl up to that
# checkpoint's step, summary.json and the W&B run id (the resumed run logs to the same id). Left
# out: older checkpoints and the local W&B files (metrics.jsonl holds the same numbers).
# Usage: bash configs/keep_train_run.sh RUN_FOLDER KEPT_FOLDER   (then git add -f KEPT_FOLDER)
# To go on: cp -r KEPT_FOLDER RUN_FOLDER && meta-opt train --resume RUN_FOLDER
# Keep only the newest: KEPT_FOLDER is replaced whole, so a committed run folder holds one checkpoint.
set -eu
SRC=${1:?train run folder} DEST=${2:?folder to keep it in}
[ -f "$SRC/config.yaml" ] || { echo "keep_train_run: $SRC holds no run (no config.yaml)" >&2; exit 2; }
NEWEST=$(ls -d "$SRC"/checkpoints/ckpt-* 2>/dev/null | sort | tail -n 1)
[ -n "$NEWEST" ] || { echo "keep_train_run: $SRC holds no checkpoint to go on from" >&2; exit 2; }
STEP=$((10#${NEWEST##*ckpt-}))
rm -rf "$DEST"
mkdir -p "$DEST/checkpoints"
cp "$SRC/config.yaml" "$DEST/"
for FILE in summary.json wandb_run_id.txt; do
  if [ -f "$SRC/$FILE" ]; then cp "$SRC/$FILE" "$DEST/"; fi
done
cp -r "$NEWEST" "$DEST/checkpoints/"
if [ -f "$SRC/metrics.jsonl" ]; then  # the rows a resumed run would not write again
  python3 - "$SRC/metrics.jsonl" "$DEST/metrics.jsonl" "$STEP" <<'EOF'
import json, sys
source, dest, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(source, encoding="utf-8") as rows, open(dest, "w", encoding="utf-8") as out:
    out.writelines(row for row in rows if row.strip() and json.loads(row)["step"] <= step)
EOF
fi
echo "kept $SRC at meta-step $STEP in $DEST ($(du -sh "$DEST" | cut -f1))"
