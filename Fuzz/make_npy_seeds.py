"""Writes a seed corpus of .npy files with numpy: every dtype the decoder reads, both byte orders,
C and Fortran order, 0-d, empty and 4-d arrays, and the header versions 1.0, 2.0 and 3.0."""
import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
arrays = {
    "f32": rng.standard_normal((2, 3)).astype("<f4"), "f64be": rng.standard_normal((3,)).astype(">f8"),
    "f16": rng.standard_normal((4,)).astype("<f2"), "i8": np.arange(-3, 3, dtype=np.int8),
    "u8": np.arange(6, dtype=np.uint8).reshape(2, 3), "i16be": np.arange(4, dtype=">i2"),
    "i32": np.arange(5, dtype="<i4"), "i64": np.arange(3, dtype="<i8"), "u64be": np.arange(2, dtype=">u8"),
    "bool": np.array([True, False, True]), "c64": (np.arange(3) + 1j).astype("<c8"),
    "c128be": (np.arange(2) - 2j).astype(">c16"), "scalar": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32), "nchw": rng.standard_normal((1, 3, 4, 5)).astype(np.float32),
    "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
    "fortran_be": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
}
for name, a in arrays.items():
    np.save(os.path.join(out, name + ".npy"), a)
for version in [(1, 0), (2, 0), (3, 0)]:
    with open(os.path.join(out, "v%d%d.npy" % version), "wb") as f:
        np.lib.format.write_array(f, np.arange(4, dtype=np.float32), version=version)
