"""Training and validation photographs for the enhancement models.

Sources (all real photographs, chosen by eye from the packages' images; illustrations and
abstract renders are left out):
  * Debian `plasma-workspace-wallpapers` (apt-get download + dpkg -x)
  * Debian `lomiri-wallpapers-16.04` and `lomiri-wallpapers-20.04` (same)
  * the colour photographs bundled in the `scikit-image` PyPI package

`mate-backgrounds` and `ukui-wallpapers` are reserved for independent evaluation and are
never read here.

`python data.py` fetches and extracts the packages (into Models/train/data/, git-ignored),
builds the cleaned images and prints the split. The validation split is fixed by SPLIT_SEED
and stratified per source (one image in five, at least one per source).
"""
import hashlib
import json
import os
import random
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DEBS = os.path.join(DATA, "debs")
EXTRACT = os.path.join(DATA, "extract")
CACHE = os.path.join(DATA, "cache")

SPLIT_SEED = 20240607

# package -> pinned Debian version (bookworm) and the photographs inside it
PACKAGES = {
    "plasma-workspace-wallpapers": {
        "version": "4:5.27.5-2",
        "root": "usr/share/wallpapers",
        # <name>/contents/images/<largest landscape file>
        "photos": ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                   "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"],
    },
    "lomiri-wallpapers-16.04": {
        "version": "20.04.0-2",
        "root": "usr/share/backgrounds",
        "photos": ["Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg",
                   "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg",
                   "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
                   "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
                   "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
                   "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
                   "sunset_by_Aitzol_Berasategi.jpg"],
    },
    "lomiri-wallpapers-20.04": {
        "version": "20.04.0-2",
        "root": "usr/share/backgrounds",
        "photos": ["Kleiber_by_Lukas_Baubkus.jpg"],
    },
}
SKIMAGE_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"]

# Clean ground truth: photos are downscaled (antialiased bicubic) so the longer side is at
# most this; that removes most sensor noise and JPEG artifacts of the originals.
TRAIN_LONG_SIDES = (1536, 768)
VAL_LONG_SIDE = 1024


def _run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def fetch():
    """apt-get download + dpkg -x each package (pinned version; falls back to the candidate
    with a warning if the pin is gone). Returns {package: version actually used}."""
    os.makedirs(DEBS, exist_ok=True)
    used = {}
    for pkg, info in PACKAGES.items():
        dest = os.path.join(EXTRACT, pkg)
        stamp = os.path.join(dest, ".version")
        if os.path.exists(stamp):
            used[pkg] = open(stamp).read().strip()
            continue
        try:
            try:
                _run(["apt-get", "download", f"{pkg}={info['version']}"], cwd=DEBS)
            except subprocess.CalledProcessError:
                # a fresh machine may have empty package lists
                _run(["apt-get", "update", "-qq"])
                _run(["apt-get", "download", f"{pkg}={info['version']}"], cwd=DEBS)
        except subprocess.CalledProcessError:
            print(f"warning: {pkg}={info['version']} not available; using the candidate", file=sys.stderr)
            _run(["apt-get", "download", pkg], cwd=DEBS)
        debs = sorted(f for f in os.listdir(DEBS) if f.startswith(pkg + "_") and f.endswith(".deb"))
        deb = os.path.join(DEBS, debs[-1])
        version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        os.makedirs(dest, exist_ok=True)
        _run(["dpkg", "-x", deb, dest])
        with open(stamp, "w") as f:
            f.write(version + "\n")
        used[pkg] = version
    return used


def versions():
    """Versions of every data source (Debian packages + scikit-image)."""
    import skimage
    out = {}
    for pkg in PACKAGES:
        stamp = os.path.join(EXTRACT, pkg, ".version")
        out[pkg] = open(stamp).read().strip() if os.path.exists(stamp) else "?"
    out["scikit-image"] = skimage.__version__
    return out


def _plasma_file(root, name):
    d = os.path.join(root, name, "contents", "images")
    best = None
    for f in sorted(os.listdir(d)):
        w, h = (int(v) for v in os.path.splitext(f)[0].split("x"))
        if w >= h and (best is None or w * h > best[0]):
            best = (w * h, f)
    return os.path.join(d, best[1])


def sources():
    """[(id, source, path)] of every photograph, in a fixed order."""
    import skimage
    out = []
    for pkg, info in PACKAGES.items():
        root = os.path.join(EXTRACT, pkg, info["root"])
        for name in info["photos"]:
            if pkg == "plasma-workspace-wallpapers":
                path = _plasma_file(root, name)
            else:
                path = os.path.join(root, name)
            out.append((f"{pkg}/{os.path.splitext(name)[0]}", pkg, path))
    skdir = os.path.join(os.path.dirname(skimage.__file__), "data")
    for name in SKIMAGE_PHOTOS:
        out.append((f"scikit-image/{os.path.splitext(name)[0]}", "scikit-image", os.path.join(skdir, name)))
    return out


def split():
    """(train_ids, val_ids): per source, a seeded shuffle; every fifth image (at least one)
    goes to validation."""
    rng = random.Random(SPLIT_SEED)
    by_src = {}
    for ident, src, _ in sources():
        by_src.setdefault(src, []).append(ident)
    train, val = [], []
    for src in sorted(by_src):
        ids = sorted(by_src[src])
        rng.shuffle(ids)
        n_val = max(1, round(len(ids) / 5))
        val += sorted(ids[:n_val])
        train += sorted(ids[n_val:])
    return sorted(train), sorted(val)


def _resize_long(im, long_side):
    w, h = im.size
    s = long_side / max(w, h)
    if s >= 1:
        return im
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)


def _crop_multiple(im, m=16):
    w, h = im.size
    W, H = w - w % m, h - h % m
    x0, y0 = (w - W) // 2, (h - H) // 2
    return im.crop((x0, y0, x0 + W, y0 + H))


def _cache_path(ident, tag):
    return os.path.join(CACHE, ident.replace("/", "__") + f"__{tag}.png")


def prepare():
    fetch()
    os.makedirs(CACHE, exist_ok=True)
    train, val = split()
    paths = {i: p for i, _, p in sources()}
    for ident in train:
        for ls in TRAIN_LONG_SIDES:
            out = _cache_path(ident, f"train{ls}")
            if not os.path.exists(out):
                im = Image.open(paths[ident]).convert("RGB")
                _crop_multiple(_resize_long(im, ls)).save(out)
    for ident in val:
        out = _cache_path(ident, "val")
        if not os.path.exists(out):
            im = Image.open(paths[ident]).convert("RGB")
            _crop_multiple(_resize_long(im, VAL_LONG_SIDE)).save(out)
    return train, val


def load_train():
    """List of HxWx3 uint8 arrays (each training photo at each training scale)."""
    train, _ = prepare()
    out = []
    for ident in train:
        for ls in TRAIN_LONG_SIDES:
            out.append(np.asarray(Image.open(_cache_path(ident, f"train{ls}")).convert("RGB")))
    return out


def load_val():
    """[(id, PIL RGB image)]; every size a multiple of 16."""
    _, val = prepare()
    return [(i, Image.open(_cache_path(i, "val")).convert("RGB")) for i in val]


def description():
    train, val = split()
    v = versions()
    pk = ", ".join(f"{k} {v[k]}" for k in list(PACKAGES) + ["scikit-image"])
    return (f"{len(train)} train / {len(val)} val photos (split seed {SPLIT_SEED}) from {pk}")


def split_digest():
    train, val = split()
    return hashlib.sha256(json.dumps([train, val]).encode()).hexdigest()[:12]


if __name__ == "__main__":
    train, val = prepare()
    print("versions:", versions())
    print("train:", len(train))
    for i in train:
        print("  ", i)
    print("val:", len(val))
    for i in val:
        print("  ", i)
    print(description())
