"""Expected outputs for the enhancement golden tests, computed with ONNX Runtime.

For each task, runs the model on photo.png through the same pre- and post-processing as
SwiftONNXEnhance (whole image, no tiling) and writes golden/<task>.png plus golden/manifest.tsv
(task, scale, pad multiple, model path relative to the repository root, model sha256).

    /work/main/.venv/bin/python Tests/EnhanceTests/Resources/make_golden.py            # test models
    /work/main/.venv/bin/python Tests/EnhanceTests/Resources/make_golden.py --models Models/enhance

The Swift test (EnhanceGoldenTests) reads the manifest, runs the same model and compares per pixel
within 1/255.
"""
import argparse
import hashlib
import os

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# task name, scale, pad multiple, model file (the pipeline's settings for each task)
TASKS = [
    ("upscale_x2", 2, 1, "sr_x2.onnx"),
    ("upscale_x4", 4, 1, "sr_x4.onnx"),
    ("restore", 1, 8, "restore.onnx"),
    ("deblur", 1, 8, "deblur.onnx"),
    ("colorize", 1, 1, "colorize.onnx"),
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


def enhance(rgb, scale, pad, model_path, task):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    h, w = rgb.shape[:2]
    if task == "colorize":
        l = lightness(rgb.astype(np.float64))
        x = (l / 100).astype(np.float32)[None, None]
        y = run(sess, x)[0].astype(np.float64)  # 2 x H x W
        assert y.shape == (2, h, w), y.shape
        out = lab_to_srgb(l, y[0] * 128, y[1] * 128)
    else:
        x = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        ph, pw = -h % pad, -w % pad
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
    args = ap.parse_args()
    models = os.path.abspath(args.models)
    rgb = np.asarray(Image.open(args.photo).convert("RGB"), dtype=np.float32) / 255
    os.makedirs(os.path.join(HERE, "golden"), exist_ok=True)
    rows = []
    for task, scale, pad, file in TASKS:
        path = os.path.join(models, file)
        if not os.path.exists(path):
            print(f"skip {task}: no {path}")
            continue
        out = enhance(rgb, scale, pad, path, task)
        Image.fromarray(out, "RGB").save(os.path.join(HERE, "golden", task + ".png"))
        sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
        rows.append(f"{task}\t{scale}\t{pad}\t{os.path.relpath(path, ROOT)}\t{sha}")
        print(f"{task}: {out.shape[1]}x{out.shape[0]} from {os.path.relpath(path, ROOT)}")
    with open(os.path.join(HERE, "golden", "manifest.tsv"), "w") as fh:
        fh.write("# task\tscale\tpad_multiple\tmodel (relative to the repository root)\tsha256\n")
        fh.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
