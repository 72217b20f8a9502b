#!/usr/bin/env bash
# Fuzzes SwiftONNX with libFuzzer + AddressSanitizer (Fuzz/README.md).
#
#   Fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     default: 300 s each of model npy pb image
#
# Builds swift-onnx-fuzz with -sanitize=fuzzer,address into .build/fuzz (linked with lld: gold fails
# on this link with an internal error), gathers the seed corpus
# (the conformance models and their input .pb files, .npy files written by numpy, the test images;
# Fuzz/regressions/TARGET too), then runs each target for the given time with a 2 s timeout per
# input and a 2 GB memory limit. Inputs that add coverage accumulate in .build/fuzz/corpus/TARGET;
# a finding is written to .build/fuzz/findings/ and the run stops with a non-zero status.
# FUZZ_SEED=N fixes libFuzzer's random seed (the CI smoke run uses it, so a finding there repeats).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(model npy pb image)
[ -d Tests/Conformance/cases ] || ./scripts/setup.sh

echo "==> building swift-onnx-fuzz with libFuzzer and AddressSanitizer (.build/fuzz)"
swift build -c release --scratch-path .build/fuzz --product swift-onnx-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
    -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld 2>&1 | grep -E "error|warning: unre|Compiling|Build" || true
bin=.build/fuzz/release/swift-onnx-fuzz
[ -x "$bin" ] || { echo "build failed"; exit 1; }

seeds=.build/fuzz/seeds
if [ ! -d "$seeds" ]; then
    echo "==> seed corpus"
    mkdir -p "$seeds"/{model,pb,npy,image}
    for d in Tests/Conformance/cases/test_*; do
        n=$(basename "$d")
        [ -f "$d/model.onnx" ] && cp "$d/model.onnx" "$seeds/model/$n.onnx"
        [ -f "$d/test_data_set_0/input_0.pb" ] && cp "$d/test_data_set_0/input_0.pb" "$seeds/pb/$n.pb"
    done
    .venv/bin/python Fuzz/make_npy_seeds.py "$seeds/npy"
    cp Tests/EnhanceTests/Resources/photo.png "$seeds/image/"
    .venv/bin/python - "$seeds/image" <<'PY'
import sys, os
from PIL import Image
out = sys.argv[1]
im = Image.open(os.path.join(out, "photo.png")).convert("RGB").resize((24, 16))
im.save(os.path.join(out, "small.png")); im.convert("L").save(os.path.join(out, "gray.png"))
im.convert("RGBA").save(os.path.join(out, "rgba.png"))
im.save(os.path.join(out, "small.jpg"), quality=80); im.convert("L").save(os.path.join(out, "gray.jpg"))
im.save(os.path.join(out, "progressive.jpg"), progressive=True)
im.save(os.path.join(out, "small.bmp")); im.convert("P").save(os.path.join(out, "palette.bmp"))
im.save(os.path.join(out, "small.ppm")); im.convert("L").save(os.path.join(out, "gray.pgm"))
PY
fi

mkdir -p .build/fuzz/findings
for t in "${targets[@]}"; do
    corpus=.build/fuzz/corpus/$t
    mkdir -p "$corpus"
    dirs=("$corpus" "$seeds/$t")
    [ -d "Fuzz/regressions/$t" ] && dirs+=("Fuzz/regressions/$t")
    dict=(); [ -f "Fuzz/$t.dict" ] && dict=(-dict="Fuzz/$t.dict")
    echo "==> fuzzing $t for $secs s"
    log=.build/fuzz/$t.log
    set +e
    seed=(); [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
    ASAN_OPTIONS=detect_leaks=0 "$bin" "$t" "${dict[@]}" "${seed[@]}" -max_total_time="$secs" -timeout=2 -rss_limit_mb=2048 \
        -max_len=1048576 -print_final_stats=1 -artifact_prefix=".build/fuzz/findings/$t-" "${dirs[@]}" > "$log" 2>&1
    status=$?
    set -e
    grep -E "^#[0-9]+[[:space:]]*(INITED|DONE)|stat::number_of_executed_units|ERROR|SUMMARY|Test unit written|runtime failure|Fatal error" "$log" || true
    [ "$status" -eq 0 ] || { echo "FINDING in $t (exit $status): see $log and .build/fuzz/findings/"; exit 1; }
done
echo "==> no findings"
