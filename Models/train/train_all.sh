#!/usr/bin/env bash
# Reproduce all enhancement models: data, training, ONNX export, evaluation + manifest.
#   bash Models/train/train_all.sh
# About 1 hour on the 2-core machine (each task's iteration count is fixed in train.py).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -r requirements.txt
fi
PY=.venv/bin/python
export OMP_WAIT_POLICY=PASSIVE
mkdir -p runs
$PY data.py | tail -1
for task in ${TASKS:-deblur restore sr2 sr4 color}; do
  echo "== train $task"
  nice -n 10 $PY train.py --task "$task" 2>&1 | tee "runs/$task.log" | grep -E "^(task|done|colour)|it [0-9]+00/" || true
  test -f "runs/$task.pt"
done
$PY export.py
$PY evaluate.py --manifest
