#!/usr/bin/env python3
"""Writes reference inputs and ONNX Runtime outputs for every model of Models/MANIFEST.tsv.

For each model (a manifest row whose file ends in .onnx) the seeded inputs described in
Models/inputs.json are generated, the model is run with ONNX Runtime (CPU, 1 thread, all graph
optimizations) and these files are written to Models/reference/<model file without .onnx>/:

    input_K.pb / output_K.pb   serialized TensorProtos (the tensor's name is inside)
    inputs.json                the model, its inputs (name, dtype, shape, file) and outputs

Run Models/fetch.py first. Usage:  .venv/bin/python Models/make_reference.py [--only SUBSTRING ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fetch import read_manifest, verified  # noqa: E402

CONFIG = os.path.join(HERE, "inputs.json")


def load_config() -> dict:
    with open(CONFIG) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


# Kinds of the quantized variants Models/make_int8.py writes as <float stem>.<kind>.onnx.
VARIANT_KINDS = ("qdq", "qop", "dyn", "nbits4")


def config_name(model: str, config: dict) -> str | None:
    """The Models/inputs.json entry that gives a model file its inputs: the file's own entry, or for
    a quantized variant <stem>.<kind>.onnx (kind in VARIANT_KINDS) without one, the entry of its float
    model <stem>.onnx. Pass that name to make_inputs: the variant then gets the float model's inputs,
    seeds included. None when neither is listed. model may be a path; only its file name counts."""
    base = os.path.basename(model)
    if base in config:
        return base
    stem, dot, ext = base.rpartition(".")
    if dot and ext == "onnx":
        float_stem, dot, kind = stem.rpartition(".")
        if dot and kind in VARIANT_KINDS and f"{float_stem}.onnx" in config:
            return f"{float_stem}.onnx"
    return None


def seed_for(model: str, input_name: str) -> int:
    """A stable seed per (model, input), independent of Python's hash randomization."""
    return zlib.crc32(f"{model}/{input_name}".encode())


def make_input(model: str, name: str, spec: dict, rng: np.random.Generator | None = None) -> np.ndarray:
    """The input `name` of `model` following its spec; random generators draw from `rng` (default:
    seeded by the model and input names, the references' seed)."""
    shape = tuple(spec["shape"])
    dtype = np.dtype(spec["dtype"])
    if rng is None:
        rng = np.random.default_rng(seed_for(model, name))
    gen = spec["gen"]
    if gen == "uniform":
        a = rng.uniform(spec["low"], spec["high"], size=shape)
    elif gen == "normal":
        a = rng.normal(0.0, spec.get("std", 1.0), size=shape)
    elif gen == "randint":
        a = rng.integers(spec["low"], spec["high"], size=shape)
    elif gen == "const":
        a = np.full(shape, spec["value"])
    elif gen == "arange01":
        n = int(np.prod(shape))
        a = np.arange(n).reshape(shape) / n
    else:
        raise ValueError(f"{model}: input {name}: unknown generator {gen!r}")
    return np.asarray(a).astype(dtype)


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and its flags, from /proc/cpuinfo (\"unknown CPU\" and none elsewhere)."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and name == "unknown CPU":
                    name = v.strip()
                elif k.strip() == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    return name, flags


def make_inputs(model: str, cfg: dict, model_path: str) -> dict[str, np.ndarray]:
    """Inputs in the model's declared order; checks the config names every graph input."""
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    declared = [i.name for i in m.graph.input if i.name not in inits]
    specs = cfg["inputs"]
    missing = [n for n in declared if n not in specs]
    extra = [n for n in specs if n not in declared]
    if missing or extra:
        raise ValueError(f"{model}: inputs.json does not match the model's inputs "
                         f"(missing {missing}, not in model {extra})")
    return {n: make_input(model, n, specs[n]) for n in declared}


def ort_session(path: str, threads: int = 1, spinning: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if not spinning:   # its pool's threads sleep between runs instead of spinning on a core
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def write_tensor(path: str, a: np.ndarray, name: str) -> None:
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(a, name=name).SerializeToString())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="only models whose file name contains one of these")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    ap.add_argument("--out", default=os.path.join(HERE, "reference"))
    args = ap.parse_args()

    config = load_config()
    rows = [r for r in read_manifest() if r["file"].endswith(".onnx")]
    if args.only:
        rows = [r for r in rows if any(s in r["file"] for s in args.only)]
    failures = 0
    for row in rows:
        model = row["file"]
        path = os.path.join(args.cache, model)
        if not verified(path, row):
            print(f"ERROR {model}: missing or unverified in {args.cache}; run Models/fetch.py first", file=sys.stderr)
            failures += 1
            continue
        if model not in config:
            print(f"ERROR {model}: no entry in Models/inputs.json", file=sys.stderr)
            failures += 1
            continue
        cfg = config[model]
        feeds = make_inputs(model, cfg, path)
        sess = ort_session(path)
        out_names = [o.name for o in sess.get_outputs()]
        outs = sess.run(out_names, feeds)
        d = os.path.join(args.out, model[: -len(".onnx")])
        os.makedirs(d, exist_ok=True)
        info = {"model": model, "inputs": [], "outputs": [],
                "rtol": cfg.get("rtol", 1e-3), "atol": cfg.get("atol", 1e-4)}
        for k, (name, a) in enumerate(feeds.items()):
            write_tensor(os.path.join(d, f"input_{k}.pb"), a, name)
            info["inputs"].append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape), "file": f"input_{k}.pb"})
        for k, (name, a) in enumerate(zip(out_names, outs)):
            a = np.asarray(a)
            write_tensor(os.path.join(d, f"output_{k}.pb"), a, name)
            info["outputs"].append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape), "file": f"output_{k}.pb"})
        with open(os.path.join(d, "inputs.json"), "w") as f:
            json.dump(info, f, indent=1)
        shapes = ", ".join(f"{o['name']}{o['shape']}" for o in info["outputs"])
        print(f"ok {model}: {len(feeds)} inputs -> {shapes}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
