#!/usr/bin/env python3
"""Makes the degraded copies of chelsea.png that scripts/demo.sh enhances (seeded, reproducible).

    .venv/bin/python Models/samples/make_degraded.py
"""
import io
import os

import numpy as np
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    photo = Image.open(os.path.join(HERE, "chelsea.png")).convert("RGB")
    rng = np.random.default_rng(0)
    a = np.asarray(photo).astype(np.float64) + rng.normal(0, 15, (photo.height, photo.width, 3))
    noisy = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=40)
    with open(os.path.join(HERE, "chelsea_noisy.jpg"), "wb") as f:
        f.write(buf.getvalue())
    photo.filter(ImageFilter.GaussianBlur(2)).save(os.path.join(HERE, "chelsea_blurred.png"))
    photo.convert("L").save(os.path.join(HERE, "chelsea_gray.png"))


if __name__ == "__main__":
    main()
