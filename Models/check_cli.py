#!/usr/bin/env python3
"""Runs every manifest model through the `swift-onnx run` command line on its reference inputs and
compares each output file with ONNX Runtime's (Models/reference) and, for the onnx "light" models,
with the outputs bundled in the onnx wheel. Exit code 1 on any mismatch or failure.

Usage: .venv/bin/python Models/check_cli.py [--bin .build/release/swift-onnx] [--format npy|pb]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def safe(name):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return "_" + s if s in ("", ".", "..") else s


def close(got, want, rtol, atol):
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/dtype {got.shape} {got.dtype}, expected {want.shape} {want.dtype}"
    if want.dtype.kind in "fc":
        bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = got != want
    if bad.any():
        i = np.argmax(bad.reshape(-1))
        return f"{int(bad.sum())} of {bad.size} values differ (first {got.reshape(-1)[i]} vs {want.reshape(-1)[i]})"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release", "swift-onnx"))
    ap.add_argument("--format", default="npy", choices=["npy", "pb"])
    args = ap.parse_args()
    ref_root = os.path.join(HERE, "reference")
    failures = 0
    models = sorted(d for d in os.listdir(ref_root) if os.path.isfile(os.path.join(ref_root, d, "inputs.json")))
    if not models:
        print("no reference outputs: run Models/fetch.py and Models/make_reference.py", file=sys.stderr)
        return 1
    for m in models:
        info = json.load(open(os.path.join(ref_root, m, "inputs.json")))
        model_path = os.path.join(HERE, "cache", info["model"])
        with tempfile.TemporaryDirectory() as out:
            cmd = [args.bin, "run", model_path, "--output-dir", out, "--output-format", args.format]
            for i in info["inputs"]:
                cmd += ["--input", f"{i['name']}={os.path.join(ref_root, m, i['file'])}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {info['model']}: swift-onnx run exited {r.returncode}: {r.stderr.strip()}")
                failures += 1
                continue
            problems = []
            for o in info["outputs"]:
                f = os.path.join(out, safe(o["name"]) + "." + args.format)
                if not os.path.exists(f):
                    problems.append(f"{o['name']}: no output file {os.path.basename(f)}")
                    continue
                got = np.load(f) if args.format == "npy" else read_pb(f)
                why = close(got, read_pb(os.path.join(ref_root, m, o["file"])), info["rtol"], info["atol"])
                if why:
                    problems.append(f"{o['name']} vs ONNX Runtime: {why}")
                bundled = os.path.join(HERE, "cache", m + "_output_0.pb")
                if m.startswith("light_") and o is info["outputs"][0] and os.path.exists(bundled):
                    why = close(got, read_pb(bundled), max(info["rtol"], 1e-3), info["atol"])
                    if why:
                        problems.append(f"{o['name']} vs bundled onnx output: {why}")
            if problems:
                failures += 1
                print(f"FAIL {info['model']}: " + "; ".join(problems))
            else:
                print(f"ok   {info['model']}: {len(info['outputs'])} outputs match (rtol {info['rtol']}, atol {info['atol']})")
    print(f"swift-onnx run on real models: {len(models) - failures} of {len(models)} match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
