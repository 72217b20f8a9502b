#!/usr/bin/env bash
# The main job on a bundled default: set-up if needed, build the CLI optimized, then enhance the
# bundled photo (Models/samples/chelsea.png) with the bundled models (Models/enhance) on SwiftONNX:
# upscale x2 and x4, restore (denoise/JPEG), deblur, colorize. Prints where each result was written.
# Pass an image path to enhance your own photo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/swift-flags.sh
echo "==> building swift-onnx (release)"
swift build "${SWIFT_FAST_FLAGS[@]}" --product swift-onnx 2>&1 | grep -E "error|Compiling|Build complete" || true
bin="$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx"
in="${1:-Models/samples/chelsea.png}"
out=".build/demo"
mkdir -p "$out"
stem="$(basename "${in%.*}")"
echo "==> swift-onnx enhance on $in (models: Models/enhance)"
"$bin" enhance upscale "$in" "$out/${stem}_x2.png" --scale 2 --quiet
"$bin" enhance upscale "$in" "$out/${stem}_x4.png" --scale 4 --quiet
"$bin" enhance restore "$in" "$out/${stem}_restored.png" --quiet
"$bin" enhance deblur "$in" "$out/${stem}_deblurred.png" --quiet
"$bin" enhance colorize "$in" "$out/${stem}_colorized.png" --quiet
for f in x2 x4 restored deblurred colorized; do echo "wrote $(pwd)/$out/${stem}_$f.png"; done
echo "==> also: swift-onnx identify (Magika file-type model)"
"$bin" identify --model Models/cache/magika__standard_v3_3.onnx \
    --config Models/cache/magika__standard_v3_3.config.min.json README.md Package.swift
