#!/usr/bin/env bash
# Reproduce all enhancement models: data, training, ONNX export, evaluation + manifest.
#   bash Models/train/train_all.sh
# Two lanes, one per core (1 thread each): deblur (4 phases) -> sr2 -> sr4 and restore (3 phases) -> color (2 phases)
# (each task's iteration count is fixed in train.py). Logs: runs/<task>.log.
# TASKS="restore color" trains only those, one after the other.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -r requirements.txt
fi
PY=.venv/bin/python
export OMP_WAIT_POLICY=PASSIVE
mkdir -p runs
start=$(date +%s)
$PY data.py | tail -1

lane() {
  for task in "$@"; do
    # A run is deterministic for a given thread count, not across thread counts (float sums
    # split differently): every task trains on 1 thread, one lane per core.
    threads=1
    echo "== train $task (runs/$task.log, $threads thread(s))"
    if ! nice -n 10 $PY train.py --task "$task" --threads $threads > "runs/$task.log" 2>&1; then
      echo "training $task failed; see Models/train/runs/$task.log" >&2
      return 1
    fi
    grep -E "^(task|linear|colour|done)" "runs/$task.log" | sed "s/^/   [$task] /"
  done
}

if [ -n "${TASKS:-}" ]; then
  # shellcheck disable=SC2086
  lane $TASKS
else
  lane deblur sr2 sr4 & a=$!
  lane restore color & b=$!
  wait $a
  wait $b
fi
echo "== training took $(( ($(date +%s) - start) / 60 )) min"
$PY export.py
$PY evaluate.py --manifest
