#!/usr/bin/env python3
"""Runs every exported transformer model (Models/transformers/*.onnx, made by export_transformers.py) through
`swift-onnx run` on its reference inputs and compares each output with ONNX Runtime's
(Models/transformers/reference/<stem>/output_<i>.npy), with the rtol/atol of its io.json (1e-3 / 1e-4).
Prints one line per file (ok, FAIL with swift-onnx's error, or the max abs difference) and exits 1 on any failure.

Needs only numpy: .venv/bin/python Models/check_transformers_cli.py [--bin .build/release/swift-onnx] [--only SUBSTRING ...]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "transformers")


def safe(name):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return "_" + s if s in ("", ".", "..") else s


def compare(got, want, rtol, atol):
    """(problem or None, max abs diff)"""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/dtype {got.shape} {got.dtype}, expected {want.shape} {want.dtype}", float("inf")
    if want.dtype.kind in "fc":
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        maxdiff = float(np.nanmax(diff)) if diff.size else 0.0
        bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        maxdiff = float(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64)))) if got.size else 0.0
        bad = got != want
    if bad.any():
        i = int(np.argmax(bad.reshape(-1)))
        return (f"{int(bad.sum())} of {bad.size} values differ, max abs diff {maxdiff:.3g} "
                f"(first at flat index {i}: {got.reshape(-1)[i]} vs {want.reshape(-1)[i]})"), maxdiff
    return None, maxdiff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release", "swift-onnx"))
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    refs = os.path.join(ROOT, "reference")
    stems = sorted(d for d in os.listdir(refs) if os.path.isfile(os.path.join(refs, d, "io.json")))
    if args.only:
        stems = [s for s in stems if any(o in s for o in args.only)]
    if not stems:
        print("no references: run Models/export_transformers.py", file=sys.stderr)
        return 1
    failures = 0
    for stem in stems:
        info = json.load(open(os.path.join(refs, stem, "io.json")))
        with tempfile.TemporaryDirectory() as out:
            cmd = [args.bin, "run", os.path.join(ROOT, info["model"]), "--output-dir", out, "--output-format", "npy",
                   "--threads", str(args.threads)]
            for i in info["inputs"]:
                cmd += ["--input", f"{i['name']}={os.path.join(refs, stem, i['file'])}"]
            t0 = time.time()
            r = subprocess.run(cmd, capture_output=True, text=True)
            dt = time.time() - t0
            if r.returncode != 0:
                failures += 1
                err = " | ".join(l for l in (r.stderr.strip() or r.stdout.strip()).splitlines()[:4])
                print(f"FAIL {info['model']}: swift-onnx run exited {r.returncode}: {err}")
                continue
            problems, worst = [], 0.0
            for o in info["outputs"]:
                f = os.path.join(out, safe(o["name"]) + ".npy")
                if not os.path.exists(f):
                    problems.append(f"{o['name']}: no output file {os.path.basename(f)}")
                    continue
                why, d = compare(np.load(f), np.load(os.path.join(refs, stem, o["file"])), info["rtol"], info["atol"])
                worst = max(worst, d)
                if why:
                    problems.append(f"{o['name']}: {why}")
            if problems:
                failures += 1
                print(f"FAIL {info['model']}: " + "; ".join(problems))
            else:
                print(f"ok   {info['model']}: {len(info['outputs'])} outputs match ONNX Runtime, max abs diff "
                      f"{worst:.3g} (rtol {info['rtol']}, atol {info['atol']}; {dt:.2f}s)")
    print(f"swift-onnx run on exported transformers: {len(stems) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
