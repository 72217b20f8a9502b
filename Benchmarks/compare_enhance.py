#!/usr/bin/env python3
"""The enhancement pipeline end to end against ONNX Runtime running the same model on the whole image.

    .venv/bin/python Benchmarks/compare_enhance.py [--cases sr2_1080p sr4_1080p restore_12mp]
                                                  [--threads 1 2] [--rounds 3] [--cli PATH]

For each case a photo of that size is made from the bundled sample `Models/samples/chelsea.png`
(Lanczos upscale, saved as PNG in a temporary folder), then, interleaved in rounds so machine noise
hits both alike:

    SwiftONNX     `swift-onnx enhance TASK IN OUT --threads T --quiet`, wall time of the whole command:
                  reading the PNG, loading the model, the tiles, writing the PNG (the time a user
                  waits); its peak resident memory from /usr/bin/time when available
    ONNX Runtime  the same .onnx file on the whole image at once in one session.run (intra_op threads
                  T, all optimizations, spinning off): model time only, no file reading or writing;
                  the session is created and warmed on a small image first (not timed)
    tract         the same model on the whole image (the `tract` PyPI package, single-threaded, so its
                  time is shown in both thread rows), model time only, after one untimed run

and prints the medians and SwiftONNX / ONNX Runtime. The enhancement issue's figure: at most 1.2x.
Build first: swift build -c release --product swift-onnx.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Models"))
from make_reference import cpu_info  # noqa: E402

CASES = {
    # name: (task, scale, model file, width, height)
    "sr2_1080p": ("upscale", 2, "sr_x2.onnx", 1920, 1080),
    "sr4_1080p": ("upscale", 4, "sr_x4.onnx", 1920, 1080),
    "restore_12mp": ("restore", 1, "restore.onnx", 4000, 3000),
}


def make_photo(path, w, h):
    src = Image.open(os.path.join(ROOT, "Models", "samples", "chelsea.png")).convert("RGB")
    src.resize((w, h), Image.LANCZOS).save(path)


def ort_time(model, photo, threads, multiple):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    x = load_input(photo, multiple)
    sess.run(None, {"input": x[:, :, :64, :64].copy()})
    t = time.perf_counter()
    sess.run(None, {"input": x})
    return time.perf_counter() - t


def load_input(photo, multiple):
    x = np.asarray(Image.open(photo).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255.0
    h, w = x.shape[2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    return np.ascontiguousarray(x)


def tract_time(model, x):
    import tract
    m = tract.onnx().load(model)
    m.set_input_fact(0, ",".join(str(d) for d in x.shape) + ",f32")
    runnable = m.into_model().into_runnable()
    runnable.run([x])
    t = time.perf_counter()
    runnable.run([x])
    return time.perf_counter() - t


def swift_time(cli, task, scale, photo, out, threads):
    cmd = [cli, "enhance", task, photo, out, "--threads", str(threads), "--quiet"]
    if task == "upscale":
        cmd[3:3] = ["--scale", str(scale)]
    timed = ["/usr/bin/time", "-f", "maxrss_kb %M"] + cmd if os.path.exists("/usr/bin/time") else cmd
    t = time.perf_counter()
    p = subprocess.run(timed, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"swift-onnx failed: {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    m = re.search(r"maxrss_kb (\d+)", p.stderr)
    return dt, (int(m.group(1)) / 1024 if m else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(ROOT, ".build", "release", "swift-onnx"))
    ap.add_argument("--no-tract", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.cli):
        sys.exit(f"{args.cli} not found: swift build -c release --product swift-onnx")
    name, flags = cpu_info()
    isa = "AVX-512" + (" VNNI" if "avx512_vnni" in flags else "") if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    print(f"CPU: {name} ({isa}), {os.cpu_count()} cores")
    print(f"{'case':14s} {'threads':>7s} {'SwiftONNX s':>12s} {'ORT s':>8s} {'ratio':>7s} {'tract s':>8s} {'ratio':>7s} "
          f"{'Swift RSS MB':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            task, scale, model_file, w, h = CASES[name]
            model = os.path.join(ROOT, "Models", "enhance", model_file)
            photo = os.path.join(tmp, f"{name}.png")
            make_photo(photo, w, h)
            out = os.path.join(tmp, f"{name}_out.png")
            multiple = 8 if task in ("restore", "deblur") else 1
            tr = []
            for threads in args.threads:
                sw, ot, rss = [], [], []
                for _ in range(args.rounds):
                    ot.append(ort_time(model, photo, threads, multiple))
                    if not args.no_tract and len(tr) < args.rounds:
                        tr.append(tract_time(model, load_input(photo, multiple)))
                    dt, mb = swift_time(args.cli, task, scale, photo, out, threads)
                    sw.append(dt)
                    rss.append(mb)
                s, o = statistics.median(sw), statistics.median(ot)
                t = statistics.median(tr) if tr else float("nan")
                print(f"{name:14s} {threads:7d} {s:12.2f} {o:8.2f} {s / o:6.2f}x {t:8.2f} {s / t:6.2f}x {max(rss):13.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
