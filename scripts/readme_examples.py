#!/usr/bin/env python3
"""Makes the README's before/after crops with the swift-onnx CLI and the bundled models.

Degrades Models/samples/rocket.jpg (a validation photo, never trained on) the way the models' users
meet it (bicubic downscale by 2 and 4, Gaussian noise sigma 15 + JPEG quality 40, Pillow
GaussianBlur(2), Pillow convert("L")), runs `swift-onnx enhance` on each, and writes one strip per
task to docs/examples/<task>.png: the degraded input (scaled with nearest neighbour to the output
size) | the CLI's output | the original, all cropped to the same region.

    .venv/bin/python scripts/readme_examples.py [--bin .build/release/swift-onnx] [--models-dir Models/enhance]
"""
import argparse
import io
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = (170, 120, 470, 345)  # rocket and towers, in original pixels
GAP = 6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "swift-onnx"))
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "Models", "enhance"))
    args = ap.parse_args()
    out_dir = os.path.join(ROOT, "docs", "examples")
    os.makedirs(out_dir, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "Models", "samples", "rocket.jpg")).convert("RGB")
    w, h = photo.size
    rng = np.random.default_rng(0)

    def noisy_jpeg(img):
        a = np.asarray(img).astype(np.float64) + rng.normal(0, 15, (h, w, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=40)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    cases = [
        ("upscale_x2", ["upscale", "--scale", "2"], photo.resize((w // 2, h // 2), Image.BICUBIC), 2),
        ("upscale_x4", ["upscale", "--scale", "4"], photo.resize((w // 4, h // 4), Image.BICUBIC), 4),
        ("restore", ["restore"], noisy_jpeg(photo), 1),
        ("deblur", ["deblur"], photo.filter(ImageFilter.GaussianBlur(2)), 1),
        ("colorize", ["colorize"], photo.convert("L"), 1),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd, degraded, scale in cases:
            src = os.path.join(tmp, name + "_in.png")
            dst = os.path.join(tmp, name + "_out.png")
            degraded.save(src)
            subprocess.run([args.bin, "enhance", cmd[0], src, dst, "--quiet",
                            "--models-dir", args.models_dir] + cmd[1:], check=True)
            result = Image.open(dst).convert("RGB")
            before = degraded.convert("RGB")
            if scale > 1:
                before = before.resize(result.size, Image.NEAREST)
            panels = [before.crop(BOX), result.crop(BOX), photo.crop(BOX)]
            pw, ph = panels[0].size
            strip = Image.new("RGB", (3 * pw + 2 * GAP, ph), (255, 255, 255))
            for i, p in enumerate(panels):
                strip.paste(p, (i * (pw + GAP), 0))
            path = os.path.join(out_dir, name + ".png")
            strip.save(path, optimize=True)
            print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
