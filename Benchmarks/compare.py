#!/usr/bin/env python3
"""Side-by-side speed of ONNX Runtime, tract and SwiftONNX on the same models and the same inputs.

For each model (default: every model of Models/MANIFEST.tsv, from Models/cache/), the seeded inputs
of Models/inputs.json (a quantized variant <stem>.<kind>.onnx of Models/make_int8.py gets those of
<stem>.onnx; a model not listed there gets seeded random tensors of the declared shapes, symbolic
dims from --dim) are saved as .npy files and fed to all three runtimes. The runtimes
run interleaved in rounds (ORT, tract, Swift, ORT, tract, Swift, ...) so machine noise hits all
alike; each round creates a fresh session, does one warm-up run, then --runs timed runs. Medians are
over every timed run of every round.

Load times are measured the same way for both runtimes, twice:
    load       creating a session in a process that has created one of the same model before, which is
               still alive: ONNX Runtime's rounds in this process (an untimed session first), SwiftONNX's
               `--second-load` (a second session after the timed runs)
    1st load   the first session of a fresh process, the library already imported: ONNX Runtime in the
               process that measures its RSS, SwiftONNX's first session in each round's process

    ONNX Runtime  CPU provider, intra_op threads = --threads, inter_op 1, all optimizations,
                  spinning off (session.intra_op.allow_spinning 0: between runs its threads sleep, as
                  SwiftONNX's do, rather than hold a core the other runtimes' rounds need)
    tract         the `tract` PyPI package (Models/requirements.txt pins it); load+optimize = load
    SwiftONNX     the swift-onnx-bench executable (build: swift build -c release --product swift-onnx-bench)

Usage:
    .venv/bin/python Benchmarks/compare.py [MODEL ...] [--bench PATH] [--runs N] [--rounds R]
                                           [--threads T] [--dim NAME=VALUE ...] [--no-tract] [--json] [--int8]
MODEL is a manifest file name (or a unique substring of one) or a path to an .onnx file. --int8 adds
every quantized variant of Models/MANIFEST-int8.tsv (from Models/cache/int8/), each beside its float source.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Models"))
from fetch import read_manifest  # noqa: E402
from make_reference import config_name, cpu_info, load_config, make_inputs, ort_session  # noqa: E402

import onnx  # noqa: E402

TRACT_TYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int8": "i8", "int16": "i16",
               "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
               "uint64": "u64", "bool": "bool"}


def int8_variants(cache: str) -> list[tuple[str, str]]:
    """(display name, path) of every variant of Models/MANIFEST-int8.tsv, each followed by its float source."""
    path = os.path.join(ROOT, "Models", "MANIFEST-int8.tsv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for r in rows:
        v = (r["file"], os.path.join(cache, "int8", r["file"]))
        if not os.path.isfile(v[1]):
            sys.exit(f"error: {v[1]} is missing: run .venv/bin/python Models/make_int8.py")
        out.append(v)
        src = (r["source"], os.path.join(cache, r["source"]))
        if src not in out:
            out.append(src)
    return out


TRANSFORMERS = os.path.join(ROOT, "Models", "transformers")


def transformer_exports() -> list[str]:
    """The files of Models/MANIFEST-transformers.tsv (committed in Models/transformers/)."""
    path = os.path.join(ROOT, "Models", "MANIFEST-transformers.tsv")
    with open(path, newline="") as f:
        return [r["file"] for r in csv.DictReader(f, delimiter="\t") if r.get("file")]


def resolve_models(names: list[str], cache: str, int8: bool = False,
                   transformers: bool = False) -> list[tuple[str, str]]:
    """(display name, path) for each argument (and, with int8, every quantized variant and its source;
    with transformers, every export of Models/MANIFEST-transformers.tsv)."""
    manifest = [r["file"] for r in read_manifest() if r["file"].endswith(".onnx")]
    exports = transformer_exports()
    if int8 and not names:
        return int8_variants(cache)
    if transformers and not names:
        return [(f, os.path.join(TRANSFORMERS, f)) for f in exports]
    if not names:
        return [(f, os.path.join(cache, f)) for f in manifest]
    out = int8_variants(cache) if int8 else []
    if transformers:
        out += [(f, os.path.join(TRANSFORMERS, f)) for f in exports]
    for n in names:
        if os.path.isfile(n):
            out.append((os.path.basename(n), n))
            continue
        hits = [f for f in manifest if f == n] or [f for f in manifest if n in f]
        t_hits = [f for f in exports if f == n] or [f for f in exports if n in f]
        if len(hits) + len(t_hits) != 1:
            sys.exit(f"error: '{n}' is not a file and matches {len(hits) + len(t_hits)} models "
                     f"{(hits + t_hits)[:5]}")
        out.append((hits[0], os.path.join(cache, hits[0])) if hits else
                   (t_hits[0], os.path.join(TRANSFORMERS, t_hits[0])))
    for name, path in out:
        if not os.path.isfile(path):
            sys.exit(f"error: {path} is missing: run .venv/bin/python Models/fetch.py")
    return out


def random_inputs(path: str, dims: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value >= 0:
                shape.append(d.dim_value)
            elif d.dim_param and d.dim_param in dims:
                shape.append(dims[d.dim_param])
            elif f"{vi.name}:{axis}" in dims:
                shape.append(dims[f"{vi.name}:{axis}"])
            else:
                sys.exit(f"error: {path}: input {vi.name} axis {axis} ({d.dim_param or '?'}) needs --dim")
        if np.issubdtype(dtype, np.floating):
            a = rng.uniform(-1, 1, size=shape)
        elif dtype == np.bool_:
            a = rng.integers(0, 2, size=shape)
        else:
            a = rng.integers(0, 10, size=shape)
        feeds[vi.name] = np.asarray(a).astype(dtype)
    return feeds


def declared_dims(path: str) -> dict[str, list[str | None]]:
    """The symbolic dim name (or None) of every axis of every graph input."""
    m = onnx.load(path, load_external_data=False)
    return {vi.name: [d.dim_param or None for d in vi.type.tensor_type.shape.dim] for vi in m.graph.input}


def resized(spec: dict, axes: list[str | None], dims: dict[str, int]) -> dict:
    """An inputs.json spec with every axis whose symbolic name is in dims set to that value."""
    shape = [dims.get(name, n) if name else n for n, name in zip(spec["shape"], axes)]
    return dict(spec, shape=shape)


def listed_inputs(key: str, entry: dict, path: str, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """Models/inputs.json inputs, with the symbolic dims named in dims (--dim, --seq) changed."""
    if not dims:
        return make_inputs(key, entry, path)
    axes = declared_dims(path)
    specs = {n: resized(s, axes.get(n, []), dims) for n, s in entry["inputs"].items()}
    return make_inputs(key, dict(entry, inputs=specs), path)


def transformer_inputs(name: str, entry: dict, path: str, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """The inputs of a Models/transformers export following Models/transformers/inputs.json (generators
    randint, normal, mask; seeds as recorded), with the symbolic dims named in dims changed. A mask keeps
    each row's count of trailing zeros."""
    axes = declared_dims(path)
    feeds = {}
    for n, spec in entry["inputs"].items():
        s = resized(spec, axes.get(n, []), dims)
        shape, dtype = tuple(s["shape"]), np.dtype(s["dtype"])
        if s["gen"] == "mask":
            a = np.ones(shape, dtype=dtype)
            old_len = spec["shape"][-1]
            for b in range(shape[0]):
                zeros = old_len - spec["lengths"][b % len(spec["lengths"])]
                if zeros:
                    a[b, max(0, shape[-1] - zeros):] = 0
        else:
            rng = np.random.default_rng(s["seed"])
            if s["gen"] == "randint":
                a = rng.integers(s["low"], s["high"], size=shape, dtype=np.int64).astype(dtype)
            elif s["gen"] == "normal":
                a = (rng.standard_normal(shape) * s.get("std", 1.0)).astype(dtype)
            else:
                raise ValueError(f"{name}: input {n}: unknown generator {s['gen']!r}")
        feeds[n] = a
    return feeds


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def short_error(e: BaseException | str) -> str:
    s = str(e).strip().splitlines()
    s = [l for l in s if l.strip()]
    text = s[0] if s else type(e).__name__
    # tract errors: the first line is generic ("Failed analyse for node ..."); keep it short.
    return text[:90]


class OrtRunner:
    name = "ort"

    def __init__(self, path, feeds, threads):
        self.path, self.feeds, self.threads = path, feeds, threads
        self.alive = None

    def round(self, runs):
        if self.alive is None:   # every timed creation has one session of the model alive before it
            self.alive = ort_session(self.path, self.threads, spinning=False)
        t0 = time.perf_counter()
        sess = ort_session(self.path, self.threads, spinning=False)
        load = (time.perf_counter() - t0) * 1000
        self.alive = sess
        sess.run(None, self.feeds)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, self.feeds)
            times.append((time.perf_counter() - t) * 1000)
        return load, times


ORT_RSS_SCRIPT = r"""
import sys
import time
import numpy as np
import onnxruntime as ort
def hwm_kb():
    # this process image's peak (ru_maxrss would include the forking driver's RSS)
    with open("/proc/self/status") as f:
        return float(next(l for l in f if l.startswith("VmHWM:")).split()[1])
base = hwm_kb()
path, threads = sys.argv[1], int(sys.argv[2])
feeds = {}
for arg in sys.argv[3:]:
    name, _, f = arg.partition("=")
    feeds[name] = np.load(f)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.log_severity_level = 3
so.add_session_config_entry("session.intra_op.allow_spinning", "0")
t0 = time.perf_counter()
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
first_load = (time.perf_counter() - t0) * 1000
for _ in range(3):
    sess.run(None, feeds)
print((hwm_kb() - base) / 1024.0, first_load)
"""


def ort_fresh_process(path, files, threads):
    """ONNX Runtime in a fresh process: (peak RSS in MB for loading and running a model, minus what
    that process held before the session (the Python interpreter, numpy and onnxruntime's own code);
    the time its first session took to create, in ms), or (None, None)."""
    cmd = [sys.executable, "-c", ORT_RSS_SCRIPT, path, str(threads)] + [f"{n}={f}" for n, f in files.items()]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rss, first = r.stdout.strip().splitlines()[-1].split()
        return float(rss), float(first)
    except (ValueError, IndexError):
        return None, None


class TractRunner:
    name = "tract"

    def __init__(self, path, feeds):
        import tract  # noqa: F401  (imported lazily: --no-tract works without it)
        self.path, self.feeds = path, feeds
        self.order = None

    def round(self, runs):
        import tract
        t0 = time.perf_counter()
        m = tract.onnx().load(self.path)
        names = [m.input_name(i) for i in range(m.input_count())]
        missing = [n for n in names if n not in self.feeds]
        if missing:
            raise RuntimeError(f"tract sees inputs {missing} not in the feeds")
        for i, n in enumerate(names):
            a = self.feeds[n]
            spec = ",".join([str(d) for d in a.shape] + [TRACT_TYPES[str(a.dtype)]])
            m.set_input_fact(i, spec)
        runnable = m.into_model().into_runnable()
        load = (time.perf_counter() - t0) * 1000
        inputs = [self.feeds[n] for n in names]
        runnable.run(inputs)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            runnable.run(inputs)
            times.append((time.perf_counter() - t) * 1000)
        return load, times


class SwiftRunner:
    name = "swift"

    def __init__(self, bench, path, files, threads):
        self.bench, self.path, self.files, self.threads = bench, path, files, threads
        self.first_loads = []

    def round(self, runs):
        cmd = [self.bench, self.path, "--runs", str(runs), "--threads", str(self.threads), "--json", "--raw-times",
               "--second-load"]
        for name, f in self.files.items():
            cmd += ["--input", f"{name}={f}"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        if not lines:
            # keep the whole output (a crash's backtrace) where it can be read; the table shows one line
            log = os.path.join(tempfile.gettempdir(), f"swiftonnx-compare-failure-{safe(os.path.basename(self.path))}.log")
            with open(log, "w") as f:
                f.write(" ".join(cmd) + f"\nexit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
            print(f"  SwiftONNX failed on {self.path}: whole output in {log}", file=sys.stderr, flush=True)
            raise RuntimeError((r.stderr or r.stdout or f"exit {r.returncode}").strip())
        obj = json.loads(lines[-1])
        if "error" in obj:
            raise RuntimeError(obj["error"])
        # the model's share: the process's peak minus its footprint before loading it
        if obj.get("peak_rss_mb") is not None:
            self.peak_rss = obj["peak_rss_mb"] - (obj.get("start_rss_mb") or 0.0)
        self.isa = obj.get("isa")
        self.first_loads.append(obj["load_ms"])
        return obj.get("second_load_ms", obj["load_ms"]), obj.get("times_ms") or [obj["median_ms"]]


def cpu_description() -> str:
    """The CPU's model name and whether it has AVX-512 (from /proc/cpuinfo)."""
    name, flags = cpu_info()
    isa = "AVX-512 (F/BW/DQ/VL)" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags else \
        ("AVX2 + FMA, no AVX-512" if {"avx2", "fma"} <= flags else "no AVX2")
    vnni = ", VNNI" if "avx512_vnni" in flags else ""
    return f"{name}, {os.cpu_count()} cores, {isa}{vnni}"


def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "swift-onnx-bench"))
    ap.add_argument("--runs", type=int, default=10, help="timed runs per runtime and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dim", action="append", default=[],
                    help="NAME=VALUE: a symbolic dim's value (models not in an inputs.json need one for each; "
                         "for listed models it replaces the listed value)")
    ap.add_argument("--seq", type=int, help="every symbolic dim whose name contains 'sequence' set to this "
                                            "(transformers; models without such a dim keep their inputs)")
    ap.add_argument("--transformers", action="store_true",
                    help="every export of Models/MANIFEST-transformers.tsv (Models/transformers/)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "Models", "cache"))
    ap.add_argument("--no-tract", action="store_true")
    ap.add_argument("--json", action="store_true", help="one JSON object per model instead of the table")
    ap.add_argument("--int8", action="store_true",
                    help="every quantized variant of Models/MANIFEST-int8.tsv, each beside its float source")
    args = ap.parse_args()

    if not os.access(args.bench, os.X_OK):
        sys.exit(f"error: {args.bench} is not an executable: build it with "
                 f"`swift build -c release --product swift-onnx-bench` or pass --bench PATH")
    dims = {}
    for d in args.dim:
        k, _, v = d.rpartition("=")
        dims[k] = int(v)
    config = load_config()
    with open(os.path.join(TRANSFORMERS, "inputs.json")) as f:
        t_config = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    models = resolve_models(args.models, args.cache, int8=args.int8, transformers=args.transformers)
    tmp = tempfile.mkdtemp(prefix="swiftonnx-compare-")
    rows = []
    swift_isa = None
    try:
        for display, path in models:
            key = config_name(display, config)   # a quantized variant <stem>.<kind>.onnx: <stem>.onnx's inputs
            these = dict(dims)
            names = {a for axes in declared_dims(path).values() for a in axes if a}
            if args.seq:
                these.update({a: args.seq for a in names if "sequence" in a})
            if key:
                feeds = listed_inputs(key, config[key], path, these)
            elif display in t_config and os.path.dirname(os.path.abspath(path)) == TRANSFORMERS:
                feeds = transformer_inputs(display, t_config[display], path, these)
            else:
                feeds = random_inputs(path, these)
            display += "".join(f" {k}={v}" for k, v in sorted(these.items()) if k in names)
            d = os.path.join(tmp, safe(display))
            os.makedirs(d, exist_ok=True)
            files = {}
            for k, (name, a) in enumerate(feeds.items()):
                f = os.path.join(d, f"{k}_{safe(name)}.npy")
                np.save(f, a)
                files[name] = f
            runners = [OrtRunner(path, feeds, args.threads)]
            errors = {}
            if args.no_tract:
                errors["tract"] = "skipped"
            else:
                try:
                    runners.append(TractRunner(path, feeds))
                except Exception as e:  # tract not installed
                    errors["tract"] = short_error(e)
            runners.append(SwiftRunner(args.bench, path, files, args.threads))
            loads = {r.name: [] for r in runners}
            times = {r.name: [] for r in runners}
            for _ in range(args.rounds):
                for r in runners:
                    if r.name in errors:
                        continue
                    try:
                        load, ts = r.round(args.runs)
                        loads[r.name].append(load)
                        times[r.name].extend(ts)
                    except Exception as e:
                        errors[r.name] = short_error(e)
            swift_isa = getattr(runners[-1], "isa", None) or swift_isa
            # Peak memory, measured after the timing so it does not disturb it.
            ort_rss, ort_first = ort_fresh_process(path, files, args.threads) if "ort" not in errors else (None, None)
            swift_first = runners[-1].first_loads
            swift_rss = getattr(runners[-1], "peak_rss", None) if "swift" not in errors else None
            med = {k: (statistics.median(v) if v and k not in errors else None) for k, v in times.items()}
            ld = {k: (statistics.median(v) if v and k not in errors else None) for k, v in loads.items()}
            row = {"model": display, "ort_ms": med.get("ort"), "tract_ms": med.get("tract"),
                   "swift_ms": med.get("swift"), "ort_load_ms": ld.get("ort"), "swift_load_ms": ld.get("swift"),
                   "tract_load_ms": ld.get("tract"), "ort_first_load_ms": ort_first,
                   "swift_first_load_ms": statistics.median(swift_first) if swift_first and "swift" not in errors else None,
                   "ort_rss_mb": ort_rss, "swift_rss_mb": swift_rss,
                   "errors": errors}
            row["swift_over_ort"] = (row["swift_ms"] / row["ort_ms"]) if row["swift_ms"] and row["ort_ms"] else None
            row["swift_over_tract"] = (row["swift_ms"] / row["tract_ms"]) if row["swift_ms"] and row["tract_ms"] else None
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"  measured {display}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if not args.json:
        def cell(row, key, who):
            if row["errors"].get(who):
                return f"n/a ({row['errors'][who]})"
            return fmt_ms(row[key])

        def ratio(x):
            return "n/a" if x is None else f"{x:.2f}x"
        def mb(x):
            return "n/a" if x is None else f"{x:.0f}"
        header = ["model", "ORT ms", "tract ms", "SwiftONNX ms", "Swift/ORT", "Swift/tract", "ORT load ms", "Swift load ms",
                  "ORT 1st load", "Swift 1st load", "ORT RSS MB", "Swift RSS MB"]
        table = [[r["model"], cell(r, "ort_ms", "ort"), cell(r, "tract_ms", "tract"), cell(r, "swift_ms", "swift"),
                  ratio(r["swift_over_ort"]), ratio(r["swift_over_tract"]),
                  fmt_ms(r["ort_load_ms"]), fmt_ms(r["swift_load_ms"]),
                  fmt_ms(r["ort_first_load_ms"]), fmt_ms(r["swift_first_load_ms"]), mb(r["ort_rss_mb"]), mb(r["swift_rss_mb"])]
                 for r in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
        print(f"CPU: {cpu_description()}; SwiftONNX kernels: {swift_isa or 'n/a'}")
        print(f"runs per round {args.runs}, rounds {args.rounds}, threads {args.threads}; medians")
        for line in [header] + table:
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
        def geomean(xs):
            xs = [x for x in xs if x]
            return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None
        g_ort = geomean([r["swift_over_ort"] for r in rows])
        g_tract = geomean([r["swift_over_tract"] for r in rows])
        print("load: session creation with one session of the model alive in the process (median of the rounds); "
              "1st load: the first session of a fresh process (ORT: one process; SwiftONNX: median of the rounds)")
        print("RSS: peak resident memory of loading and running the model, each runtime in a fresh process, minus "
              "that process's footprint before the model (interpreter and libraries; the inputs for SwiftONNX)")
        print(f"geometric mean Swift/ORT {ratio(g_ort)} over {sum(1 for r in rows if r['swift_over_ort'])} models; "
              f"Swift/tract {ratio(g_tract)} over {sum(1 for r in rows if r['swift_over_tract'])} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
