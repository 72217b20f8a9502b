#!/usr/bin/env bash
# Runs the tests under sanitizers (issue 12), each in its own build folder:
#   address + undefined: the unit tests, the hostile corpus and the ONNX node conformance suite
#   thread: the concurrency tests (sessions run from many threads, the thread pool)
# Usage: scripts/sanitize.sh [asan|tsan ...]   (default: both). Exits non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d Tests/Conformance/cases ] || ./scripts/setup.sh
kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)
status=0
for k in "${kinds[@]}"; do
    case "$k" in
    asan)
        echo "==> AddressSanitizer + UndefinedBehaviorSanitizer: unit tests and conformance (.build/asan)"
        # halt_on_error: the first report fails the run; leaks are reported too.
        export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        swift test -c release --scratch-path .build/asan --sanitize=address --sanitize=undefined \
            --skip ModelTests --skip EnhanceTests 2>&1 | tee .build/asan.log |
            grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY|ONNX node conformance|Executed [0-9]+ tests|error:" || true
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
        if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" .build/asan.log; then status=1; fi
        ;;
    tsan)
        echo "==> ThreadSanitizer: concurrency tests (.build/tsan)"
        export TSAN_OPTIONS=halt_on_error=1
        swift test -c release --scratch-path .build/tsan --sanitize=thread \
            --filter "ConcurrencyStressTests|ThreadPoolTests|SessionTests|BufferPoolTests" 2>&1 | tee .build/tsan.log |
            grep -E "WARNING: ThreadSanitizer|SUMMARY|Executed [0-9]+ tests|error:" || true
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
        if grep -q "WARNING: ThreadSanitizer" .build/tsan.log; then status=1; fi
        ;;
    *) echo "unknown sanitizer run '$k' (asan, tsan)"; exit 2 ;;
    esac
done
[ "$status" -eq 0 ] && echo "SANITIZERS CLEAN" || echo "SANITIZER FINDINGS (see .build/asan.log, .build/tsan.log)"
exit "$status"
