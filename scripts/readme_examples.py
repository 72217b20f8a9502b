#!/usr/bin/env python3
"""Makes the README's before/after crops with the swift-onnx CLI and the bundled models.

Degrades Models/samples/chelsea.png the way the models' users meet it (bicubic downscale, Gaussian
noise + JPEG, Gaussian blur, grayscale), runs `swift-onnx enhance` on each, and writes matching
crops (before = degraded input scaled with nearest neighbour to the output size; after = CLI output)
to docs/examples/. Usage: .venv/bin/python scripts/readme_examples.py [--bin PATH]
"""
import argparse
import io
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "swift-onnx"))
    args = ap.parse_args()
    out_dir = os.path.join(ROOT, "docs", "examples")
    os.makedirs(out_dir, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "Models", "samples", "chelsea.png")).convert("RGB")
    w, h = photo.size
    rng = np.random.default_rng(0)
    box = (150, 40, 310, 200)  # the cat's face, in original pixels

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
        ("colorize", ["colorize"], photo.convert("L").convert("RGB"), 1),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd, degraded, scale in cases:
            src = os.path.join(tmp, name + "_in.png")
            dst = os.path.join(tmp, name + "_out.png")
            degraded.save(src)
            subprocess.run([args.bin, "enhance", cmd[0], src, dst, "--quiet"] + cmd[1:], check=True,
                           cwd=ROOT)
            result = Image.open(dst).convert("RGB")
            before = degraded.resize(result.size, Image.NEAREST) if scale > 1 else degraded
            crop = tuple(int(v * result.size[0] / w) for v in box)
            before.crop(crop).save(os.path.join(out_dir, name + "_before.png"))
            result.crop(crop).save(os.path.join(out_dir, name + "_after.png"))
            print("wrote", os.path.join("docs", "examples", name + "_{before,after}.png"))


if __name__ == "__main__":
    main()
