#!/usr/bin/env bash
# Builds the DocC documentation of the library targets, SwiftONNX, SwiftONNXEnhance and SwiftONNXText, with
# swift-docc-plugin, into .build/docs/<Target> (transformed for static hosting: serve the folder,
# open /documentation/<target>/). Prints a summary per target and exits non-zero when the build
# fails, when the compiler or docc prints any warning, or when the coverage report shows a public
# symbol without documentation (an abstract) or a parameter of a function without its description.
#
# The plugin is a dependency only while SWIFTONNX_DOCS is set (see the end of Package.swift), so
# packages that import SwiftONNX never fetch it. The documentation build uses its own scratch
# folder (.build/docs-build), and Package.resolved is put back as it was afterwards, so the normal
# build (`swift build -c release`) is left untouched.
#
# Usage: scripts/docs.sh [TARGET...]     (default: SwiftONNX SwiftONNXEnhance SwiftONNXText)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(SwiftONNX SwiftONNXEnhance SwiftONNXText)
out=.build/docs
scratch=.build/docs-build
command -v python3 >/dev/null || { echo "docs.sh: python3 is needed to read the coverage report" >&2; exit 2; }

# Package.resolved gains the plugin's pins while SWIFTONNX_DOCS is set: put it back as it was.
resolved_backup=""
if [ -f Package.resolved ]; then
    resolved_backup=$(mktemp)
    cp Package.resolved "$resolved_backup"
fi
restore_resolved() {
    if [ -n "$resolved_backup" ]; then mv -f "$resolved_backup" Package.resolved; else rm -f Package.resolved; fi
}
trap restore_resolved EXIT

mkdir -p "$out"
failed=0
summary=()
start_all=$SECONDS
for target in "${targets[@]}"; do
    log="$out/$target.log"
    echo "== $target"
    start=$SECONDS
    status=0
    SWIFTONNX_DOCS=1 swift package --scratch-path "$scratch" --allow-writing-to-directory "$out" \
        generate-documentation --target "$target" --output-path "$out/$target" \
        --experimental-skip-synthesized-symbols \
        --experimental-documentation-coverage --coverage-summary-level brief \
        >"$log" 2>&1 || status=$?
    seconds=$((SECONDS - start))
    # Progress lines of the build are noise here; warnings, errors and the coverage table are not.
    grep -v -E '^\[[0-9]+/[0-9]+\]|^(Building for|Build of|Build complete|Fetching|Fetched|Computing|Computed|Creating working copy|Working copy)' "$log" || true

    warnings=$(grep -c -E '(^|[: ])warning:' "$log" || true)
    coverage="$out/$target/documentation-coverage.json"
    if [ "$status" -ne 0 ] || [ ! -f "$coverage" ]; then
        echo "docs.sh: the documentation build of $target failed (exit $status); see $log" >&2
        summary+=("$target: FAILED (exit $status), $warnings warning(s), ${seconds}s")
        failed=1
        continue
    fi
    # Every symbol of the archive (types, members, enum cases, extended types, the module) needs an
    # abstract, and every parameter of a function its description; articles and the generated
    # "... Implementations" groups are not symbols.
    report=$(python3 - "$coverage" <<'PY'
import json, sys
symbols = [e for e in json.load(open(sys.argv[1])) if e["kind"]["isSymbol"]]
problems, with_abstract, params_described, params_total = [], 0, 0, 0
for e in sorted(symbols, key=lambda e: e["referencePath"]):
    path = e["referencePath"].split("/documentation/", 1)[-1]
    if e["hasAbstract"]:
        with_abstract += 1
    else:
        problems.append(f"{path}: no documentation")
    params = (e.get("kindSpecificData") or {}).get("associatedValue")
    if isinstance(params, dict) and "total" in params:
        described = params.get("documented", 0)
        params_described += described
        params_total += params["total"]
        if described < params["total"]:
            problems.append(f"{path}: {described} of {params['total']} parameters described")
print(len(symbols), with_abstract, params_described, params_total)
print("\n".join(problems))
PY
)
    read -r total documented params_doc params_all <<<"$(head -n 1 <<<"$report")"
    problems=$(tail -n +2 <<<"$report" | grep -c . || true)
    if [ "$problems" -gt 0 ]; then
        echo "docs.sh: $problems public symbol(s) of $target not fully documented:" >&2
        tail -n +2 <<<"$report" | sed 's/^/  /' >&2
        failed=1
    fi
    if [ "$warnings" -gt 0 ]; then
        echo "docs.sh: $warnings warning(s) building the documentation of $target (see above, and $log)" >&2
        failed=1
    fi
    summary+=("$target: $documented/$total symbols with an abstract, $params_doc/$params_all parameters described, $warnings warning(s), ${seconds}s -> $out/$target")
done

echo
echo "== Documentation summary ($((SECONDS - start_all))s)"
for line in "${summary[@]}"; do echo "  $line"; done
if [ "$failed" -ne 0 ]; then
    echo "docs.sh: FAILED" >&2
    exit 1
fi
echo "  open: serve $out/<Target> over HTTP (python3 -m http.server -d $out/SwiftONNX) and visit /documentation/swiftonnx/"
