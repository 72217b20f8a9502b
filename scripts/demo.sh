#!/usr/bin/env bash
# The main job on a bundled default: set-up if needed, build the CLI optimized, then identify the
# content type of a few files of this repository with Google's Magika model (a real pretrained
# model from the manifest), run on SwiftONNX. Pass your own files as arguments to try them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/swift-flags.sh
echo "==> building swift-onnx (release)"
swift build "${SWIFT_FAST_FLAGS[@]}" --product swift-onnx 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" || true
bin="$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx"
if [ $# -eq 0 ]; then
    set -- README.md Package.swift Proto/onnx.proto Models/fetch.py Models/inputs.json Proto/generate.sh
fi
echo "==> swift-onnx identify (Magika standard_v3_3 on SwiftONNX)"
"$bin" identify --model Models/cache/magika__standard_v3_3.onnx \
    --config Models/cache/magika__standard_v3_3.config.min.json "$@"
