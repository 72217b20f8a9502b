#!/usr/bin/env python3
"""How far ONNX Runtime's outputs of each quantized variant of Models/MANIFEST-int8.tsv are from
its outputs of the float model, on the float model's seeded inputs of Models/inputs.json.

For each variant (made by Models/make_int8.py into <cache>/int8/) both models run in ONNX Runtime
(CPU, 1 thread, all graph optimizations: make_reference.ort_session) on the same inputs
(make_reference.make_inputs with the float model's name, so the seeds are those of the float
model's reference). Per output it prints and records

    mean_abs_err   mean |int8 - float| over the elements
    max_abs_err    max  |int8 - float|
    float_mean_abs mean |float|, for scale

into Models/reference/int8_accuracy.json (committed: SwiftONNX's tests hold its own int8 error to
ORT's; the .pb files below are not, set-up makes them). For a variant whose inputs and outputs take less than PB_LIMIT bytes, the tensors are also
written as TensorProto .pb files in Models/reference/int8/<variant file without .onnx>/, laid out
as Models/make_reference.py lays out a float model's reference:

    input_K.pb         the inputs
    output_K.pb        ONNX Runtime's outputs of the variant
    float_output_K.pb  ONNX Runtime's outputs of the float model (the same as make_reference.py's)
    inputs.json        model, source, inputs, outputs and float_outputs (name, dtype, shape, file)

--time N also times each variant and its float model in ONNX Runtime (1 thread, N runs each after
one warm-up, alternating float and variant; medians) and prints the ratios; nothing of it is saved.

Usage:  .venv/bin/python Models/int8_accuracy.py [--only SUBSTRING ...] [--cache DIR] [--time N] [--references-only]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fetch import sha256_of  # noqa: E402
from make_int8 import MANIFEST_INT8, read_int8_manifest  # noqa: E402
from make_reference import config_name, cpu_info, load_config, make_inputs, ort_session, write_tensor  # noqa: E402

PB_LIMIT = 8 * 1024 * 1024
RESULTS = os.path.join(HERE, "reference", "int8_accuracy.json")


def cpu_flags() -> str:
    """The CPU's model name and the flags that pick ONNX Runtime's int8 kernels."""
    name, flags = cpu_info()
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return f"{name}; " + " ".join(f for f in wanted if f in flags)


def error_stats(got: np.ndarray, want: np.ndarray) -> dict:
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        raise ValueError(f"shape {list(g.shape)} vs float {list(w.shape)}")
    d = np.abs(g.astype(np.float64) - w.astype(np.float64))
    return {"dtype": str(w.dtype), "shape": list(w.shape),
            "mean_abs_err": float(d.mean()) if d.size else 0.0,
            "max_abs_err": float(d.max()) if d.size else 0.0,
            "float_mean_abs": float(np.abs(w.astype(np.float64)).mean()) if w.size else 0.0}


def timed_runs(sess: ort.InferenceSession, feeds: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1000)
    return times


def write_reference(d: str, row: dict, feeds: dict, out_names, outs, float_outs) -> None:
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    info = {"model": row["file"], "source": row["source"], "inputs": [], "outputs": [], "float_outputs": []}
    for k, (name, a) in enumerate(feeds.items()):
        write_tensor(os.path.join(d, f"input_{k}.pb"), a, name)
        info["inputs"].append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape), "file": f"input_{k}.pb"})
    for key, prefix, arrays in (("outputs", "output", outs), ("float_outputs", "float_output", float_outs)):
        for k, (name, a) in enumerate(zip(out_names, arrays)):
            a = np.asarray(a)
            write_tensor(os.path.join(d, f"{prefix}_{k}.pb"), a, name)
            info[key].append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape), "file": f"{prefix}_{k}.pb"})
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump(info, f, indent=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="only variants whose file name contains one of these")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"), help="float models; the variants in its int8/")
    ap.add_argument("--time", type=int, default=0, metavar="N", help="also time N runs of each (printed only)")
    ap.add_argument("--references-only", action="store_true",
                    help="write the .pb references only, not the committed int8_accuracy.json (set-up)")
    args = ap.parse_args()

    rows = list(read_int8_manifest().values())
    if args.only:
        rows = [r for r in rows if any(s in r["file"] for s in args.only)]
    config = load_config()
    ref_root = os.path.join(HERE, "reference", "int8")
    results = {}
    if os.path.isfile(RESULTS):   # --only updates the selected variants and keeps the others
        with open(RESULTS) as f:
            results = json.load(f).get("variants", {})
    failures = 0
    timings = []
    for row in rows:
        name, source = row["file"], row["source"]
        path = os.path.join(args.cache, "int8", name)
        float_path = os.path.join(args.cache, source)
        if not os.path.isfile(path) or sha256_of(path) != row["sha256"]:
            print(f"ERROR {name}: missing or not the manifest's file: run Models/make_int8.py", file=sys.stderr)
            failures += 1
            continue
        key = config_name(name, config)
        if key != source:
            print(f"ERROR {name}: its inputs.json entry is {key}, its source {source}", file=sys.stderr)
            failures += 1
            continue
        feeds = make_inputs(key, config[key], path)
        fsess, qsess = ort_session(float_path), ort_session(path)
        out_names = [o.name for o in fsess.get_outputs()]
        if [o.name for o in qsess.get_outputs()] != out_names:
            print(f"ERROR {name}: outputs differ from {source}'s", file=sys.stderr)
            failures += 1
            continue
        float_outs = fsess.run(out_names, feeds)
        outs = qsess.run(out_names, feeds)
        entry = {"source": source, "method": row["method"], "sha256": row["sha256"], "outputs": {}}
        for n, q, f in zip(out_names, outs, float_outs):
            entry["outputs"][n] = s = error_stats(q, f)
            print(f"{name} {n}{s['shape']}: mean abs err {s['mean_abs_err']:.6g}, max abs err {s['max_abs_err']:.6g}, "
                  f"float mean abs {s['float_mean_abs']:.6g}")
        size = sum(a.nbytes for a in feeds.values()) + 2 * sum(np.asarray(o).nbytes for o in outs)
        d = os.path.join(ref_root, name[: -len(".onnx")])
        if size < PB_LIMIT:
            write_reference(d, row, feeds, out_names, outs, float_outs)
            entry["reference"] = os.path.relpath(d, HERE)
        else:
            if os.path.isdir(d):
                shutil.rmtree(d)
            entry["reference"] = None
            entry["reference_note"] = f"no .pb files: inputs and outputs take {size} bytes (limit {PB_LIMIT})"
        results[name] = entry
        if args.time:
            fsess.run(None, feeds)
            qsess.run(None, feeds)
            ft, qt = [], []
            for _ in range(args.time):   # alternate so that machine noise hits both alike
                ft += timed_runs(fsess, feeds, 1)
                qt += timed_runs(qsess, feeds, 1)
            timings.append((name, statistics.median(ft), statistics.median(qt)))

    doc = {"_doc": "ONNX Runtime's error of each quantized variant against its float model, on the float model's "
                   "inputs (Models/int8_accuracy.py): per output mean and max |int8 - float| and mean |float|",
           "onnxruntime": ort.__version__, "cpu": cpu_flags(), "manifest": os.path.basename(MANIFEST_INT8),
           "variants": {k: results[k] for k in sorted(results)}}
    if not args.references_only:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    if timings:
        print(f"\nONNX Runtime, 1 thread, median of {args.time} runs (ms): float, variant, variant/float")
        for name, ft, qt in timings:
            print(f"  {name:64s} {ft:9.3f} {qt:9.3f} {qt / ft:6.2f}x")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
