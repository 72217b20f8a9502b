#!/usr/bin/env bash
# Builds and runs Tests/Consumer, a Swift 6 package that depends on SwiftONNX as a user's package
# would, twice: by version from a git URL (`.package(url:from: "0.2.0")`) and from a local folder
# (`.package(path:)`). Both builds must show 0 warnings in the consumer's code, and the consumer's
# checks (Data input and output buffer without copies, async runs, typed errors, the bundled
# enhancement models from another folder) must pass. Uses the committed state (a clone of HEAD).
#   ./scripts/consumer-test.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^let swiftONNXVersion = "\(.*\)"/\1/p' "$repo/Sources/swift-onnx/Version.swift")"
work="$(mktemp -d /tmp/swiftonnx-consumer.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The library under the folder name SwiftONNX (a path dependency's identity is its folder name).
git clone -q "$repo" "$work/SwiftONNX"
if git -C "$work/SwiftONNX" rev-parse -q --verify "refs/tags/$version" >/dev/null \
   && [ "$(git -C "$work/SwiftONNX" rev-list -n1 "$version")" = "$(git -C "$work/SwiftONNX" rev-parse HEAD)" ]; then
    echo "==> tag $version is HEAD"
else
    echo "==> tag $version moved to HEAD in the clone (the consumer builds the code under test)"
    git -C "$work/SwiftONNX" tag -f "$version" >/dev/null
fi
cp -R "$repo/Tests/Consumer" "$work/consumer"
res="$repo/Tests/SwiftONNXTests/Resources"
status=0
for mode in url path; do
    echo "==> consumer: SwiftONNX by $mode"
    cd "$work/consumer"
    rm -rf .build Package.resolved
    if [ "$mode" = url ]; then export SWIFTONNX_URL="file://$work/SwiftONNX"; unset SWIFTONNX_PATH || true
    else export SWIFTONNX_PATH="$work/SwiftONNX"; unset SWIFTONNX_URL || true; fi
    log="$work/build-$mode.log"
    if ! swift build 2>&1 > "$log"; then cat "$log"; echo "consumer build ($mode) FAILED"; exit 1; fi
    warnings=$(grep -c "warning:" "$log" || true)
    echo "build: $(grep -E 'Build complete' "$log" | tail -1); warnings: $warnings"
    if [ "$warnings" != 0 ]; then grep -A3 "warning:" "$log" | head -40; status=1; fi
    # run from another folder: the bundled models must be found from anywhere
    (cd / && "$work/consumer/.build/debug/consumer" "$res/conv_bn_relu.onnx" "$res/conv_bn_relu_input.pb" \
        "$res/conv_bn_relu_output.pb") || status=1
done
[ $status = 0 ] && echo "==> consumer test passed" || echo "==> consumer test FAILED"
exit $status
