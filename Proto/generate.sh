#!/bin/sh
# Regenerates the committed protobuf-c code from Proto/onnx.proto (pinned to onnx 1.23.2).
# Needs Debian's protobuf-c-compiler (protoc-c 1.4.1).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
protoc-c --c_out="$tmp" onnx.proto
cp "$tmp/onnx.pb-c.c" ../Sources/CONNXProto/onnx.pb-c.c
cp "$tmp/onnx.pb-c.h" ../Sources/CONNXProto/include/onnx.pb-c.h
rm -rf "$tmp"
echo "regenerated Sources/CONNXProto from Proto/onnx.proto"
