#!/usr/bin/env bash
# Sets up what is missing, then runs every test on an optimized build: unit tests, the ONNX node
# conformance suite (checked against Tests/Conformance/expectations.tsv) and the real models
# (compared with ONNX Runtime), the command line, and a consumer package built against the library.
# The full log goes to .build/test.log.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/swift-flags.sh
echo "==> swift test (release build)"
mkdir -p .build
set +e
swift test "${SWIFT_FAST_FLAGS[@]}" 2>&1 | tee .build/test.log |
    grep --line-buffered -E "ONNX node conformance|MISMATCH|error:|Executed [0-9]+ tests|Compiling|Build complete"
status=${PIPESTATUS[0]}
[ -x "$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx" ] || { echo "swift test did not build swift-onnx"; status=1; }
echo "==> every real model through the command line (swift-onnx run vs ONNX Runtime)"
# `swift test` has built the executables too (same release configuration); building them again with
# `swift build` would recompile every target without testability, about 5 minutes on 2 cores.
bin="$(swift build "${SWIFT_FAST_FLAGS[@]}" --show-bin-path)/swift-onnx"
.venv/bin/python Models/check_cli.py --bin "$bin" || status=1
.venv/bin/python Models/check_cli.py --bin "$bin" --format pb | tail -1 || status=1
.venv/bin/python Models/check_transformers_cli.py --bin "$bin" | tail -1 || status=1
echo "==> sentence embeddings through the command line (swift-onnx embed vs tokenizers + ONNX Runtime + pooling)"
.venv/bin/python Models/check_embed_cli.py --bin "$bin" || status=1
echo "==> fuzz regression inputs and the conformance models on zero inputs (swift-onnx-fuzz replay, Fuzz/README.md)"
fuzz="$(dirname "$bin")/swift-onnx-fuzz"
for t in model npy pb image; do
    if [ -n "$(ls -A "Fuzz/regressions/$t" 2>/dev/null)" ]; then "$fuzz" "$t" "Fuzz/regressions/$t" || status=1; fi
done
"$fuzz" model Tests/Conformance/cases/test_*/model.onnx || status=1
echo "==> hostile inputs through the command line (Tests/SwiftONNXTests/Resources/hostile)"
.venv/bin/python scripts/check_hostile_cli.py --bin "$bin" || status=1
echo "==> a consumer package (Swift 6) builds against SwiftONNX by version and by path, and runs (scripts/consumer-test.sh)"
./scripts/consumer-test.sh > .build/consumer-test.log 2>&1 || { cat .build/consumer-test.log; status=1; }
grep -E "^build:|==>|FAIL|all checks passed" .build/consumer-test.log || true
echo "==> documentation: DocC for both libraries, every public symbol documented, no warnings (scripts/docs.sh)"
./scripts/docs.sh > .build/docs.log 2>&1 || { tail -40 .build/docs.log; status=1; }
grep -E "symbols with an abstract" .build/docs.log || true
set -e
if [ "$status" -ne 0 ]; then echo "TESTS FAILED (exit $status); see .build/test.log"; else echo "ALL TESTS PASSED"; fi
exit "$status"
