#!/usr/bin/env python3
"""Runs every case of the hostile-input corpus (Tests/SwiftONNXTests/Resources/hostile/cases.tsv)
through `swift-onnx run`: each must exit non-zero with its message on stderr, within 2 s and
100 MB of resident memory, and leave nothing in the output folder. HostileCorpusTests checks the
same cases through the API.

    scripts/check_hostile_cli.py --bin .build/release/swift-onnx [--show]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "Tests", "SwiftONNXTests", "Resources", "hostile")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cases", default=os.path.join(CORPUS, "cases.tsv"))
    ap.add_argument("--show", action="store_true", help="print every case's exit status and message")
    args = ap.parse_args()
    lines = [l.rstrip("\n").split("\t") for l in open(args.cases)][1:]
    work = tempfile.mkdtemp(prefix="swiftonnx-hostile-")
    # The symlink case: a link inside the model's folder to a file outside it.
    outside = os.path.join(work, "outside.bin")
    with open(outside, "wb") as f:
        f.write(b"\0" * 8)
    link = os.path.join(CORPUS, "link_to_outside.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(outside, link)
    failures = 0
    try:
        for i, (model, inputs, error, message) in enumerate(lines):
            out = os.path.join(work, "out%d" % i)
            cmd = [args.bin, "run", os.path.join(CORPUS, model), "--output-dir", out]
            if inputs != "-":
                for spec in inputs.split():
                    name, file = spec.split("=", 1)
                    cmd += ["--input", "%s=%s" % (name, os.path.join(CORPUS, file))]
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                so, se = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                so, se = p.communicate()
            secs = time.monotonic() - t0
            last = se.strip().splitlines()[-1] if se.strip() else ""
            problems = []
            if p.returncode == 0:
                problems.append("exit 0")
            if p.returncode < 0 or p.returncode >= 128:
                problems.append("killed by signal / crashed (%d)" % p.returncode)
            if message not in se:
                problems.append("message %r not on stderr" % message)
            if secs > 2:
                problems.append("took %.1f s" % secs)
            if os.path.isdir(out) and os.listdir(out):
                problems.append("wrote outputs")
            if args.show or problems:
                print("%-34s %-22s exit %3d %5.2f s  %s%s" % (model, inputs, p.returncode, secs, last[:150],
                                                            ("   <-- " + "; ".join(problems)) if problems else ""))
            failures += bool(problems)
        # Peak resident memory of the largest child (getrusage keeps the maximum over all children).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if peak > 100:
            print("peak resident memory of a case: %.0f MB (limit 100)" % peak)
            failures += 1
        print("hostile inputs through swift-onnx run: %d of %d as expected, peak memory %.0f MB"
              % (len(lines) - failures, len(lines), peak))
    finally:
        os.remove(link)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
