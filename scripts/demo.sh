#!/usr/bin/env bash
# The main job on a bundled default: install the Debian packages the build needs if missing
# (scripts/setup.sh --system: no Python, nothing fetched), build the CLI optimized, then enhance the
# bundled photo Models/samples/chelsea.png with the committed models (Models/enhance) on SwiftONNX:
# upscale x2 and x4, restore its noisy JPEG copy, deblur its blurred copy, colorize its gray copy.
# Prints where each result was written (.build/demo/).
#   ./scripts/demo.sh                 # the bundled photo
#   ./scripts/demo.sh my_photo.jpg    # your photo: upscale x2 and x4, restore, deblur
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
source scripts/swift-flags.sh
echo "==> building swift-onnx (release)"
swift build "${SWIFT_FAST_FLAGS[@]}" --product swift-onnx 2>&1 | grep -E "error|Compiling|Build complete" || true
bin="$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx"
out=".build/demo"
mkdir -p "$out"

enhance() {  # task input output [options]
    local task=$1 src=$2 dst=$3
    shift 3
    echo "==> swift-onnx enhance $task $src $dst $*"
    "$bin" enhance "$task" "$src" "$dst" --models-dir Models/enhance "$@"
    echo "wrote $(pwd)/$dst"
}

if [ $# -gt 0 ]; then
    for src in "$@"; do
        base="$(basename "${src%.*}")"
        enhance upscale "$src" "$out/${base}_x2.png" --scale 2
        enhance upscale "$src" "$out/${base}_x4.png" --scale 4
        enhance restore "$src" "$out/${base}_restored.png"
        enhance deblur "$src" "$out/${base}_deblurred.png"
    done
    exit 0
fi
s=Models/samples
enhance upscale "$s/chelsea.png" "$out/chelsea_x2.png" --scale 2
enhance upscale "$s/chelsea.png" "$out/chelsea_x4.png" --scale 4
enhance restore "$s/chelsea_noisy.jpg" "$out/chelsea_restored.png"
enhance deblur "$s/chelsea_blurred.png" "$out/chelsea_deblurred.png"
enhance colorize "$s/chelsea_gray.png" "$out/chelsea_colorized.png"
echo "==> done: results in $(pwd)/$out (inputs in $s)"
