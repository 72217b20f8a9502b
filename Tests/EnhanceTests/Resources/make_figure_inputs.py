"""Inputs for the enhancement figures: a 1920x1080 photo and a 9000x8000 (72 MP) constant PNG.

    .venv/bin/python Tests/EnhanceTests/Resources/make_figure_inputs.py /tmp/enhance-figures
The large PNG is written row by row with zlib (a few hundred KB on disk, no 216 MB buffer).
"""
import os
import struct
import sys
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/enhance-figures"
os.makedirs(out, exist_ok=True)
Image.open(os.path.join(HERE, "photo.png")).convert("RGB").resize((1920, 1080), Image.BICUBIC).save(os.path.join(out, "photo1080.png"))

W, H = 9000, 8000


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


c = zlib.compressobj(9)
row = b"\x00" + bytes([120, 140, 160]) * W
idat = b"".join([c.compress(row) for _ in range(H)] + [c.flush()])
with open(os.path.join(out, "huge.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
print("wrote", out)
