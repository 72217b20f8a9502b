#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Swift: system libraries, the Python venv for the
# reference tools, the ONNX node cases and the pinned real models. Idempotent: skips what is done.
#   ./scripts/setup.sh            # everything (scripts/test.sh)
#   ./scripts/setup.sh --system   # only the Debian packages the build needs; no Python (scripts/demo.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

system_only=0
case "${1:-}" in
    "") ;;
    --system) system_only=1 ;;
    *) echo "usage: scripts/setup.sh [--system]" >&2; exit 2 ;;
esac

need=()
for p in libprotobuf-c-dev libopenblas-dev pkg-config libpng-dev zlib1g-dev libjpeg62-turbo-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "$system_only" -eq 1 ]; then exit 0; fi

# (re)install when the venv is missing or Models/requirements.txt changed since it was made; the
# node cases are generated again then too (their reference outputs depend on these versions)
want="$(sha256sum Models/requirements.txt | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null ||
   [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
    echo "==> creating the Python venv for reference tools (.venv)"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r Models/requirements.txt
    echo "$want" > .venv/.requirements.sha256
    rm -f Tests/Conformance/cases/index.txt
fi

if [ ! -f Tests/Conformance/cases/index.txt ]; then
    echo "==> generating the ONNX node conformance cases"
    .venv/bin/python Tests/Conformance/generate_cases.py >/dev/null
fi

echo "==> fetching pinned models (verified by sha256)"
.venv/bin/python Models/fetch.py
echo "==> computing ONNX Runtime reference outputs (Models/reference)"
.venv/bin/python Models/make_reference.py >/dev/null
if [ ! -f Models/cache/contrib/MANIFEST.tsv ]; then
    echo "==> ONNX Runtime's transformer optimizer on paraphrase-MiniLM-L3-v2 and its reference outputs (Models/cache/contrib)"
    .venv/bin/python Models/make_contrib.py --minilm Models/cache/contrib >/dev/null
fi
echo "==> making the quantized variants (Models/cache/int8) and their references (Models/reference/int8)"
.venv/bin/python Models/make_int8.py >/dev/null
.venv/bin/python Models/int8_accuracy.py --references-only >/dev/null
