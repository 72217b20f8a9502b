"""Expected outputs for the enhancement golden tests, computed with ONNX Runtime.

For each task, runs the model on photo.png through the same pre- and post-processing as
SwiftONNXEnhance (whole image, no tiling) and writes golden/<task>.png plus golden/manifest.tsv
(task, scale, pad multiple, model path relative to the repository root, model sha256).

    /work/main/.venv/bin/python Tests/EnhanceTests/Resources/make_golden.py            # test models
    /work/main/.venv/bin/python Tests/EnhanceTests/Resources/make_golden.py --models Models/enhance \
        --suffix _shipped --append      # adds rows for the shipped models, keeps the others

A model's metadata_props "size_multiple" is combined with the task's pad multiple (least common
multiple), as the pipeline does.

The Swift test (EnhanceGoldenTests) reads the manifest, runs the same model and compares per pixel
within 1/255.
"""
import argparse
import hashlib
import math
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Models"))
from colorize_reference import colorize_ab  # noqa: E402

# the pipeline's colorize working side (EnhanceConfiguration.colorWorkingSide)
COLOR_SIDE = 512

# task name, scale, pad multiple, model file, colorize working side (the pipeline's settings);
# colorize_side40 makes the photo larger than the working size (area-average down, bilinear up)
TASKS = [
    ("upscale_x2", 2, 1, "sr_x2.onnx", COLOR_SIDE),
    ("upscale_x4", 4, 1, "sr_x4.onnx", COLOR_SIDE),
    ("restore", 1, 8, "restore.onnx", COLOR_SIDE),
    ("deblur", 1, 8, "deblur.onnx", COLOR_SIDE),
    ("colorize", 1, 1, "colorize.onnx", COLOR_SIDE),
    ("colorize_side40", 1, 1, "colorize.onnx", 40),
]


def srgb_to_linear(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c):
    c = np.clip(c, 0, 1)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def f(t):
    return np.where(t > 0.008856451679, np.cbrt(t), t * 7.787037037 + 4.0 / 29.0)


def finv(t):
    return np.where(t > 6.0 / 29.0, t ** 3, 0.12841854934 * (t - 4.0 / 29.0))


def lightness(rgb):  # rgb: H x W x 3 in [0, 1]
    lin = srgb_to_linear(rgb)
    y = 0.2126729 * lin[..., 0] + 0.7151522 * lin[..., 1] + 0.0721750 * lin[..., 2]
    return 116 * f(y) - 16


def lab_to_srgb(l, a, b):
    fy = (l + 16) / 116
    x, y, z = 0.95047 * finv(fy + a / 500), finv(fy), 1.08883 * finv(fy - b / 200)
    r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
    g = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
    bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
    return np.stack([linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(bl)], axis=-1)


def run(session, x):
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def enhance(rgb, scale, pad, model_path, task, side):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    h, w = rgb.shape[:2]
    meta = sess.get_modelmeta().custom_metadata_map
    if int(meta.get("size_multiple", "1")) > 1:
        pad = math.lcm(pad, int(meta["size_multiple"]))
    ph, pw = -h % pad, -w % pad
    if task.startswith("colorize"):
        l = lightness(rgb.astype(np.float64))
        ab = colorize_ab(lambda x: run(sess, x), l, side, pad)
        out = lab_to_srgb(l, ab[..., 0], ab[..., 1])
    else:
        x = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
        y = run(sess, x)[0]
        assert y.shape == (3, (h + ph) * scale, (w + pw) * scale), y.shape
        out = y[:, : h * scale, : w * scale].transpose(1, 2, 0)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(HERE, "models"), help="directory with sr_x2.onnx ... colorize.onnx")
    ap.add_argument("--photo", default=os.path.join(HERE, "photo.png"))
    ap.add_argument("--suffix", default="", help="appended to each task name (golden file and manifest row)")
    ap.add_argument("--append", action="store_true", help="keep the manifest's other rows")
    args = ap.parse_args()
    models = os.path.abspath(args.models)
    rgb = np.asarray(Image.open(args.photo).convert("RGB"), dtype=np.float32) / 255
    os.makedirs(os.path.join(HERE, "golden"), exist_ok=True)
    rows = []
    manifest = os.path.join(HERE, "golden", "manifest.tsv")
    names = [t[0] + args.suffix for t in TASKS]
    if args.append and os.path.exists(manifest):
        rows = [line.rstrip("\n") for line in open(manifest)
                if line.strip() and not line.startswith("#") and line.split("\t")[0] not in names]
    for task, scale, pad, file, side in TASKS:
        path = os.path.join(models, file)
        if not os.path.exists(path):
            print(f"skip {task}: no {path}")
            continue
        out = enhance(rgb, scale, pad, path, task, side)
        name = task + args.suffix
        Image.fromarray(out, "RGB").save(os.path.join(HERE, "golden", name + ".png"))
        sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
        rows.append(f"{name}\t{scale}\t{pad}\t{os.path.relpath(path, ROOT)}\t{sha}\t{side}")
        print(f"{task}: {out.shape[1]}x{out.shape[0]} from {os.path.relpath(path, ROOT)}")
    with open(manifest, "w") as fh:
        fh.write("# task\tscale\tpad_multiple\tmodel (relative to the repository root)\tsha256\tcolorize_side\n")
        fh.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
