#!/usr/bin/env bash
# The main job on a bundled default: set-up if needed, build the CLI optimized, then run real models
# on SwiftONNX:
#  - identify the content type of files of this repository with Google's Magika model (from the
#    pinned manifest); pass your own files as arguments to try them;
#  - when the enhancement models are present in Models/enhance (see Models/train), enhance the
#    bundled CC0 photo Models/samples/chelsea.png: upscale x2 and x4, restore, deblur, colorize.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/swift-flags.sh
echo "==> building swift-onnx (release)"
swift build "${SWIFT_FAST_FLAGS[@]}" --product swift-onnx 2>&1 | grep -E "error|Compiling|Build complete" || true
bin="$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx"
if [ $# -eq 0 ]; then
    set -- README.md Package.swift Proto/onnx.proto Models/fetch.py Models/inputs.json Proto/generate.sh
fi
echo "==> swift-onnx identify (Magika standard_v3_3 on SwiftONNX)"
"$bin" identify --model Models/cache/magika__standard_v3_3.onnx \
    --config Models/cache/magika__standard_v3_3.config.min.json "$@"

if ls Models/enhance/*.onnx >/dev/null 2>&1; then
    in="Models/samples/chelsea.png"
    out=".build/demo"
    mkdir -p "$out"
    echo "==> swift-onnx enhance on $in (models: Models/enhance)"
    run() {
        local model=$1 task=$2 dst=$3
        shift 3
        if [ -f "Models/enhance/$model" ]; then
            "$bin" enhance "$task" "$in" "$dst" "$@" --quiet && echo "wrote $(pwd)/$dst"
        fi
    }
    run sr_x2.onnx upscale "$out/chelsea_x2.png" --scale 2
    run sr_x4.onnx upscale "$out/chelsea_x4.png" --scale 4
    run restore.onnx restore "$out/chelsea_restored.png"
    run deblur.onnx deblur "$out/chelsea_deblurred.png"
    run colorize.onnx colorize "$out/chelsea_colorized.png"
fi
