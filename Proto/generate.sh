#!/bin/sh
# Regenerates the committed protobuf-c code from Proto/onnx.proto and Proto/onnx-data.proto (pinned
# to onnx 1.23.2; onnx-data.proto's import names onnx.proto here instead of onnx/onnx-ml.proto).
# Needs Debian's protobuf-c-compiler (protoc-c 1.4.1).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
protoc-c --c_out="$tmp" onnx.proto onnx-data.proto
for f in onnx onnx-data; do
    cp "$tmp/$f.pb-c.c" "../Sources/CONNXProto/$f.pb-c.c"
    cp "$tmp/$f.pb-c.h" "../Sources/CONNXProto/include/$f.pb-c.h"
done
rm -rf "$tmp"
echo "regenerated Sources/CONNXProto from Proto/onnx.proto and Proto/onnx-data.proto"
